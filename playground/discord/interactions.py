"""REST routes of interactions: the callback (with ``with_response``), webhook followups (the
first after a deferred response fills in its "thinking" message) and the ``@original`` or
followup messages' get, edit and delete. Every answer is recorded in
``DiscordServer.interaction_responses``.

Callback types: 4 (a message, ephemeral with flag 64), 5 (a "thinking" message, filled in by
the first followup or an ``@original`` edit); for clicks only (else 400), 6 (an ack: the
clicked message stays as it is) and 7 (the clicked message is edited: content, components,
embeds, attachments). After a 6 or 7, ``@original`` is the clicked message. Answers to a
click reply to the clicked message, and their ``interaction_metadata`` carries
``interacted_message_id`` and no command name."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.discord import layouts, payloads
from playground.discord.channels import apply_edit, attachments_for, mentions
from playground.discord.errors import DiscordError, empty_message, form_error, unknown
from playground.discord.protocol import (
    API_PREFIX,
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    COMMAND_CHAT_INPUT,
    COMMAND_MESSAGE,
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MESSAGE_CHAT_INPUT_COMMAND,
    MESSAGE_CONTEXT_MENU_COMMAND,
    MESSAGE_DEFAULT,
    MESSAGE_REPLY,
    snowflake,
)
from playground.discord.rest import (
    Route,
    Upload,
    json_response,
    no_content,
    path_id,
    read_body,
    wants,
)
from playground.discord.state import Interaction, append_bounded

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer

_UPDATES = (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE_MESSAGE)  # answers to clicks only
KEPT_FLAGS = FLAG_EPHEMERAL | FLAG_COMPONENTS_V2  # the flags a response or followup may set


class InteractionRoutes:
    def __init__(self, server: DiscordServer) -> None:
        self.server = server

    def routes(self) -> list[Route]:
        hook = f"{API_PREFIX}/webhooks/{{app_id:\\d+}}/{{token}}"
        callback = f"{API_PREFIX}/interactions/{{interaction_id:\\d+}}/{{token}}/callback"
        return [
            ("POST", callback, self.callback),
            ("POST", hook, self.followup),
            ("GET", f"{hook}/messages/{{message_id}}", self.get_message),
            ("PATCH", f"{hook}/messages/{{message_id}}", self.edit_message),
            ("DELETE", f"{hook}/messages/{{message_id}}", self.delete_message),
        ]

    # ----------------------------------------------------------------------------- helpers

    def _message(
        self,
        interaction: Interaction,
        data: Mapping[str, Any],
        uploads: list[Upload],
        *,
        flags: int = 0,
        original_id: int | None = None,
        path: str = "",
    ) -> dict[str, Any]:
        """A response or followup message of ``interaction``, in its channel (``path``:
        where the request holds its fields, for errors: "data." in a callback)."""
        server = self.server
        payload = interaction.payload
        if layouts.is_layout(flags):
            layouts.check_fields(data, path)
        rows = layouts.message_components(data.get("components"), flags, f"{path}components")
        channel = server.state.channel(interaction.channel_id)
        ephemeral = bool(flags & FLAG_EPHEMERAL)
        attachments = attachments_for(server, channel.id, data, uploads, [], ephemeral=ephemeral)
        layouts.resolve_media(rows, attachments)
        user = payload["member"]["user"] if "member" in payload else payload["user"]
        metadata: dict[str, Any] = {
            "id": payload["id"],
            "type": payload["type"],
            "user": copy.deepcopy(user),
            "authorizing_integration_owners": payload["authorizing_integration_owners"],
        }
        if original_id is not None:
            metadata["original_response_message_id"] = str(original_id)
        extra: dict[str, Any] = {
            "webhook_id": str(server.application_id),
            "application_id": str(server.application_id),
            "interaction_metadata": metadata,
            "components": rows,
        }
        reply_to = None
        if interaction.message_id is not None:
            # A click's answers reply to the clicked message and carry no command.
            metadata["interacted_message_id"] = str(interaction.message_id)
            with contextlib.suppress(DiscordError):
                reply_to = server.state.message(interaction.message_id)
            message_type = MESSAGE_REPLY if reply_to is not None else MESSAGE_DEFAULT
        else:
            name = payload["data"]["name"]
            metadata.update(name=name, command_type=interaction.command_type)
            if interaction.command_type == COMMAND_MESSAGE:
                metadata["target_message_id"] = payload["data"]["target_id"]
            extra["interaction"] = {  # the deprecated field, still sent for commands
                "id": payload["id"],
                "type": payload["type"],
                "name": name,
                "user": copy.deepcopy(user),
            }
            message_type = MESSAGE_CONTEXT_MENU_COMMAND
            if interaction.command_type == COMMAND_CHAT_INPUT:
                message_type = MESSAGE_CHAT_INPUT_COMMAND
        content = data.get("content") or ""
        message = payloads.message(
            snowflake(),
            channel.payload,
            server.bot_user,
            content=content,
            mentions=mentions(server, content, None, data.get("allowed_mentions")),
            attachments=attachments,
            embeds=data.get("embeds"),
            reply_to=reply_to,
            message_type=message_type,
            flags=flags,
            extra=extra,
        )
        payloads.validate_message(message)
        return message

    def _record(self, kind: str, interaction: Interaction, **fields: Any) -> None:
        entry = {"kind": kind, "interaction_id": interaction.payload["id"], **fields}
        records = self.server.interaction_responses
        append_bounded(records, copy.deepcopy(entry), self.server.state.limits.records)

    def _webhook_interaction(self, request: web.Request) -> Interaction:
        interaction = self.server.state.interaction(request.match_info["token"])
        if path_id(request, "app_id") != self.server.application_id:
            raise unknown("Webhook", 10015)
        return interaction

    def _target(self, request: web.Request, interaction: Interaction) -> dict[str, Any]:
        """``@original`` or one of the interaction's followups."""
        state = self.server.state
        raw = request.match_info["message_id"]
        if raw == "@original":
            if interaction.original_id is None:
                raise unknown("Message", 10008)
            return state.message(interaction.original_id)
        if not raw.isdigit() or int(raw) not in (
            [interaction.original_id, *interaction.followup_ids]
        ):
            raise unknown("Message", 10008)
        return state.message(int(raw))

    async def _body(self, request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
        return await read_body(request, self.server.max_upload_bytes)

    # ----------------------------------------------------------------------------- routes

    async def callback(self, request: web.Request) -> web.Response:
        server = self.server
        interaction = server.state.interaction(request.match_info["token"])
        if path_id(request, "interaction_id") != interaction.id:
            raise unknown("interaction", 10062)
        body, uploads = await self._body(request)
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        callback_type = int(body.get("type", 0))
        data = body.get("data") or {}
        clicked = interaction.message_id is not None
        if callback_type in _UPDATES and not clicked:
            raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {4, 5, 9, 12}.")
        message = None
        if callback_type in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            flags = int(data.get("flags") or 0) & KEPT_FLAGS
            if callback_type == CALLBACK_DEFERRED_MESSAGE:
                flags |= FLAG_LOADING
                data = {}
            elif payloads.is_empty({**data, "attachments": uploads}):
                raise empty_message()
            message = self._message(interaction, data, uploads, flags=flags, path="data.")
            interaction.original_id = int(message["id"])
        elif callback_type in _UPDATES:
            # The clicked message is the response: 7 edits it now, 6 leaves it for later.
            clicked_message = server.state.message(int(interaction.message_id or 0))
            if callback_type == CALLBACK_UPDATE_MESSAGE:
                apply_edit(server, clicked_message, data, uploads, path="data.")
                message = clicked_message
            interaction.original_id = int(clicked_message["id"])
        interaction.response_type = callback_type
        if message is not None and callback_type == CALLBACK_UPDATE_MESSAGE:
            await server.events.message_updated(message)
        elif message is not None:
            await server.events.message_created(message)
        server.events.check_conditions()  # a type 6 (or any other) makes no message event
        self._record("callback", interaction, type=callback_type, payload=body, message=message)
        if not wants(request, "with_response"):
            return no_content()
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction.payload["id"],
                "type": interaction.payload["type"],
                "response_message_loading": bool(message and message["flags"] & FLAG_LOADING),
                "response_message_ephemeral": bool(message and message["flags"] & FLAG_EPHEMERAL),
            }
        }
        if interaction.original_id is not None:
            response["interaction"]["response_message_id"] = str(interaction.original_id)
        if message is not None:
            response["resource"] = {"type": callback_type, "message": message}
        elif callback_type:
            response["resource"] = {"type": callback_type}
        return json_response(response)

    async def followup(self, request: web.Request) -> web.Response:
        server = self.server
        interaction = self._webhook_interaction(request)
        body, uploads = await self._body(request)
        if not interaction.acknowledged:
            raise unknown("Webhook", 10015)
        if payloads.is_empty({**body, "attachments": uploads}):
            raise empty_message()
        original = None
        if interaction.original_id is not None:
            original = server.state.message(interaction.original_id)
        if original is not None and original["flags"] & FLAG_LOADING:
            # The first followup after a deferred response fills in the "thinking" message.
            original["flags"] &= ~FLAG_LOADING
            apply_edit(server, original, body, uploads)
            original["edited_timestamp"] = None
            message = original
            await server.events.message_updated(message)
        else:
            flags = int(body.get("flags") or 0) & KEPT_FLAGS
            message = self._message(
                interaction, body, uploads, flags=flags, original_id=interaction.original_id
            )
            interaction.followup_ids.append(int(message["id"]))
            await server.events.message_created(message)
        self._record("followup", interaction, payload=body, message=message)
        if not wants(request, "wait"):
            return no_content()
        return json_response(message)

    async def get_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        return json_response(self._target(request, interaction))

    async def edit_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._target(request, interaction)
        body, uploads = await self._body(request)
        message["flags"] &= ~FLAG_LOADING
        apply_edit(self.server, message, body, uploads)
        await self.server.events.message_updated(message)
        self._record("edit", interaction, payload=body, message=message)
        return json_response(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        message = self._target(request, interaction)
        await self.server.events.message_deleted(message)
        self._record("delete", interaction, payload={}, message=message)
        return no_content()
