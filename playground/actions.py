"""What a person does on the playground's page: post, use a command, click a button, as one
of the page's people (the ``as`` field: "padawan", who owns the guild; "master", a
moderator with the Admins role; "youngling", a plain member). `playground.web` routes
requests here; refusals are `ApiError` (``{"error": ...}``).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from playground.discord import OPT_ATTACHMENT, DiscordError, DiscordServer
from playground.forms import ApiError, read_form, slash_options
from playground.views import message_view, user_view

MAX_CONTENT = 2000
MAX_CUSTOM_ID = 100
ACK_TIMEOUT = 3.0  # Discord says "This interaction failed" when a bot takes longer
PEOPLE = (  # (username, what the page calls them)
    ("padawan", "owner"),
    ("master", "moderator"),
    ("youngling", "member"),
)
_ID = re.compile(r"^\d{1,20}$")


def seed_people(server: DiscordServer) -> None:
    """Make sure the page's people exist ("youngling" is the one the look-alike lacks)."""
    if server.state.user_named("youngling") is None:
        server.add_member("youngling")["global_name"] = "Youngling"


def people_view(server: DiscordServer) -> list[dict[str, Any]]:
    """The people the page can post as, with their roles in the page's guild."""
    people = []
    for username, title in PEOPLE:
        user = server.state.user_named(username)
        if user is not None:
            view = user_view(user) or {}
            people.append({**view, "title": title, "roles": server.role_names(user)})
    return people


class PageActions:
    """The page's POST routes, acting in the look-alike's default channel."""

    def __init__(self, server: DiscordServer, *, max_upload_bytes: int, bot_name: str) -> None:
        self.server = server
        self.max_upload_bytes = max_upload_bytes
        self.bot_name = bot_name
        self.ack_timeout = ACK_TIMEOUT

    def person(self, username: str | None) -> dict[str, Any]:
        """The user the page acts as (default "padawan"); 400 for anyone else."""
        username = (username or "padawan").strip()
        user = self.server.state.user_named(username)
        if username not in dict(PEOPLE) or user is None:
            names = ", ".join(name for name, _ in PEOPLE)
            raise ApiError(400, f"Post as one of {names}.")
        return user

    def message_id(self, raw: str | None, what: str) -> str | None:
        """A message of the page's channel, by id; None when not given."""
        raw = (raw or "").strip()
        if not raw:
            return None
        gone = ApiError(404, f"The {what} message does not exist (any more).")
        if not _ID.match(raw):
            raise gone
        try:
            message = self.server.get_message(raw)
        except DiscordError:
            raise gone from None
        if message["channel_id"] != self.server.channel["id"]:
            raise gone
        return raw

    # --------------------------------------------------------------------------- messages

    async def post_message(self, request: web.Request) -> web.StreamResponse:
        fields, files = await read_form(request, self.max_upload_bytes)
        author = self.person(fields.get("as"))
        content = fields.get("content", "")
        if len(content) > MAX_CONTENT:
            raise ApiError(400, f"Messages are at most {MAX_CONTENT} characters.")
        if not content.strip() and not files:
            raise ApiError(400, "Type something or attach a file.")
        reply_to = self.message_id(fields.get("reply_to"), "replied-to")
        message = await self.server.post_message(
            content,
            attachments=files,
            reply_to=int(reply_to) if reply_to else None,
            author=author,
        )
        return web.json_response({"message": message_view(message, self.bot_name)}, status=201)

    # ----------------------------------------------------------------------- interactions

    def _command(self, name: str, command_type: int) -> dict[str, Any]:
        for command in self.server.application_commands:
            if command["name"] == name and int(command.get("type") or 1) == command_type:
                return command
        kind = "/" if command_type == 1 else "the app command "
        raise ApiError(409, f"The bot has not registered {kind}{name} (yet). Is it running?")

    async def post_interaction(self, request: web.Request) -> web.StreamResponse:
        fields, files = await read_form(request, self.max_upload_bytes)
        user = self.person(fields.get("as"))
        kind = fields.get("kind", "slash")
        name = fields.get("name", "").strip().lstrip("/")
        try:
            if kind == "slash":
                command = self._command(name, 1)
                options = slash_options(command, fields.get("options"))
                wanted = [o for o in command.get("options") or [] if o["type"] == OPT_ATTACHMENT]
                required = [o for o in wanted if o.get("required")]
                if len(files) < len(required):
                    noun = required[0]["name"]
                    raise ApiError(400, f"/{name} needs an attachment for {noun!r}.")
                if len(files) > len(wanted):
                    raise ApiError(400, f"/{name} takes at most {len(wanted)} attachments.")
                server = self.server
                payload = await server.invoke_slash_command(name, options, files, user=user)
            elif kind == "message":
                self._command(name, 3)
                target = self.message_id(fields.get("target_id"), "target")
                if target is None:
                    raise ApiError(400, "target_id is required.")
                payload = await self.server.invoke_message_command(name, int(target), user=user)
            else:
                raise ApiError(400, "kind must be 'slash' or 'message'.")
        except (LookupError, ValueError) as error:
            raise ApiError(400, str(error)) from None
        except DiscordError as error:
            raise ApiError(error.status, error.message) from None
        return web.json_response({"interaction_id": payload["id"]}, status=202)

    async def click(self, request: web.Request) -> web.StreamResponse:
        """Click a button: 200 ``{"interaction_id", "response_type"}`` once the bot has
        answered (``response_type`` null when it did not within 3 s, as Discord says
        "This interaction failed")."""
        fields, _ = await read_form(request, 64 * 1024)
        user = self.person(fields.get("as"))
        message_id = self.message_id(fields.get("message_id"), "clicked")
        if message_id is None:
            raise ApiError(400, "message_id is required.")
        custom_id = fields.get("custom_id", "")
        if not custom_id or len(custom_id) > MAX_CUSTOM_ID:
            raise ApiError(400, "custom_id is required (at most 100 characters).")
        try:
            payload = await self.server.click_button(message_id, custom_id, user=user)
        except LookupError as error:
            raise ApiError(400, str(error)) from None
        except DiscordError as error:
            raise ApiError(error.status, error.message) from None
        try:
            response_type = await self.server.wait_for_ack(payload["id"], timeout=self.ack_timeout)
        except TimeoutError:
            response_type = None
        return web.json_response({"interaction_id": payload["id"], "response_type": response_type})


__all__ = ["ACK_TIMEOUT", "PEOPLE", "PageActions", "people_view", "seed_people"]
