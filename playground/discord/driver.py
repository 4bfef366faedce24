"""The test driver: what tests and the playground's page do as people in the guilds (post,
delete, type, use commands), what they wait for (the bot's messages and replies), and the
event feed (`subscribe`). `DiscordServer` is a `Driver`.

Everything happens in the default channel unless a ``channel_id`` is given; people are given
as user dicts (at least ``username``; unknown users join the channel's guild), by default the
human, "padawan".
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from playground.discord import payloads
from playground.discord.channels import mentions
from playground.discord.events import Predicate, Subscription
from playground.discord.protocol import (
    COMMAND_CHAT_INPUT,
    COMMAND_MESSAGE,
    FLAG_LOADING,
    INTERACTION_APPLICATION_COMMAND,
    OPT_ATTACHMENT,
    OPT_SUB_COMMAND,
    OPT_SUB_COMMAND_GROUP,
    now_iso,
    snowflake,
)
from playground.discord.state import Channel, Interaction

if TYPE_CHECKING:
    from playground.discord.cdn import Cdn
    from playground.discord.events import Events
    from playground.discord.faults import Faults
    from playground.discord.gateway import Gateway
    from playground.discord.state import State

File = tuple[str, bytes] | tuple[str, bytes, str]  # (filename, data[, content_type])


class Driver:
    """Acting as the guilds' people, and watching what the bot does."""

    state: State
    events: Events
    gateway: Gateway
    cdn: Cdn
    faults: Faults
    application_id: int
    channel_id: int
    max_upload_bytes: int
    human: dict[str, Any]

    # ----------------------------------------------------------------------------- people

    def _channel(self, channel_id: int | None) -> Channel:
        return self.state.channel(self.channel_id if channel_id is None else int(channel_id))

    def _author(self, author: Mapping[str, Any] | None, channel: Channel) -> dict[str, Any]:
        """The user for an author dict (default: the human), a member of the channel's guild."""
        state = self.state
        user = None
        if author is None:
            user = self.human
        elif author.get("id") is None:
            user = state.user_named(str(author.get("username", "visitor")))
        if user is None:
            assert author is not None
            user = payloads.user(
                int(author.get("id") or snowflake()),
                str(author.get("username", "visitor")),
                bot=bool(author.get("bot", False)),
                global_name=author.get("global_name"),
            )
            user.update({k: v for k, v in author.items() if k != "id"})
            user = state.add_user(user)
        state.join(state.guild_of(channel), int(user["id"]), at=now_iso())
        return user

    # ----------------------------------------------------------------------------- messages

    async def post_message(
        self,
        content: str,
        *,
        attachments: Sequence[File] = (),
        reply_to: int | None = None,
        author: dict[str, Any] | None = None,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Post a message as a person (default "padawan") and dispatch MESSAGE_CREATE.

        ``attachments`` are ``(filename, bytes)`` or ``(filename, bytes, content_type)``;
        ``reply_to`` is the id of a message in the same channel.
        """
        channel = self._channel(channel_id)
        user = self._author(author, channel)
        stored = [
            self.cdn.store(channel.id, item[0], item[1], content_type=_content_type(item))
            for item in attachments
        ]
        referenced = self.state.message(int(reply_to), channel) if reply_to is not None else None
        message = payloads.message(
            snowflake(),
            channel.payload,
            user,
            content=content,
            mentions=mentions(self, content, referenced),  # type: ignore[arg-type]
            attachments=stored,
            reply_to=referenced,
        )
        return await self.events.message_created(message)

    async def delete_message(self, message_id: int) -> None:
        """Delete a message and dispatch MESSAGE_DELETE."""
        await self.events.message_deleted(self.state.message(int(message_id)))

    def get_message(self, message_id: int | str) -> dict[str, Any]:
        """A kept message by id, in any channel (raises `DiscordError` 404 when unknown)."""
        return self.state.message(int(message_id))

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """A channel's kept messages, oldest first (ephemeral ones included)."""
        return list(self.state.channel(int(channel_id)).messages.values())

    async def simulate_typing(
        self, author: dict[str, Any] | None = None, *, channel_id: int | None = None
    ) -> None:
        """A person starts typing: TYPING_START to the bot and the feed."""
        channel = self._channel(channel_id)
        user_id = int(self._author(author, channel)["id"])
        data = self.events.typing(user_id, channel)
        member = self.state.member(self.state.guild_of(channel), user_id)
        await self.gateway.dispatch("TYPING_START", {**data, "member": member})

    # ----------------------------------------------------------------------------- commands

    def _interaction(
        self,
        command: dict[str, Any],
        data: dict[str, Any],
        user: dict[str, Any],
        channel: Channel,
    ) -> Interaction:
        state = self.state
        guild = state.guild_of(channel)
        data = {"id": command["id"], "name": command["name"], "type": command["type"], **data}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        payload = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": INTERACTION_APPLICATION_COMMAND,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": copy.deepcopy(channel.payload),
            "member": state.member(guild, int(user["id"]), permissions=True),
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(state.permissions(guild, self.application_id)),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": self.max_upload_bytes,
        }
        interaction = Interaction(payload=payload, command_type=command["type"])
        state.add_interaction(interaction)
        return interaction

    def _options(
        self,
        definitions: list[dict[str, Any]],
        values: Mapping[str, Any],
        attachments: Sequence[File],
        resolved: dict[str, dict[str, Any]],
        channel: Channel,
    ) -> list[dict[str, Any]]:
        """The options of an invocation; attachment ones are stored and resolved."""
        by_name = {o["name"]: o for o in definitions}
        unknown = set(values) - set(by_name)
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}; known: {sorted(by_name)}")
        free = list(range(len(attachments)))
        for name, value in values.items():
            if by_name[name]["type"] == OPT_ATTACHMENT and value in free:
                free.remove(value)
        options = []
        for definition in definitions:
            name = definition["name"]
            if name in values:
                value = values[name]
            elif definition["type"] == OPT_ATTACHMENT and free:
                value = free.pop(0)
            elif definition.get("required"):
                raise ValueError(f"missing required option {name!r}")
            else:
                continue
            if definition["type"] == OPT_ATTACHMENT:
                item = attachments[value] if isinstance(value, int) else value
                stored = self.cdn.store(
                    channel.id, item[0], item[1], content_type=_content_type(item), ephemeral=True
                )
                resolved.setdefault("attachments", {})[stored["id"]] = stored
                value = stored["id"]
            options.append({"name": name, "type": definition["type"], "value": value})
        return options

    async def invoke_slash_command(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        attachments: Sequence[File] = (),
        *,
        user: dict[str, Any] | None = None,
        channel_id: int | None = None,
    ) -> dict[str, Any]:
        """Invoke a registered slash command as a person; returns the interaction payload.

        ``name`` may be ``"command sub"`` or ``"command group sub"`` for subcommands. An
        attachment option's value is ``(filename, bytes[, content_type])`` or an index into
        ``attachments``; attachment options left out take ``attachments`` in order. Other
        options are sent as given. Wait for the answer with ``wait_for_reply(id)``.
        """
        channel = self._channel(channel_id)
        root, *path = name.split()
        command = self.state.find_command(root, COMMAND_CHAT_INPUT, channel.guild_id)
        resolved: dict[str, dict[str, Any]] = {}
        definitions = command.get("options") or []
        chain: list[dict[str, Any]] = []
        for part in path:
            sub = next((o for o in definitions if o["name"] == part), None)
            if sub is None or sub["type"] not in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP):
                raise LookupError(f"{root!r} has no subcommand {part!r}")
            chain.append({"name": part, "type": sub["type"], "options": []})
            definitions = sub.get("options") or []
        leaf = self._options(definitions, options or {}, attachments, resolved, channel)
        if chain:
            for outer, inner in itertools.pairwise(chain):
                outer["options"] = [inner]
            chain[-1]["options"] = leaf
            leaf = [chain[0]]
        data: dict[str, Any] = {"options": leaf}
        if resolved:
            data["resolved"] = resolved
        interaction = self._interaction(command, data, self._author(user, channel), channel)
        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction.payload

    async def invoke_message_command(
        self, name: str, target_message_id: int, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Invoke a registered message context-menu command on a message (in its channel)."""
        target = self.state.message(int(target_message_id))
        channel = self.state.channel(int(target["channel_id"]))
        command = self.state.find_command(name, COMMAND_MESSAGE, channel.guild_id)
        data = {
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: copy.deepcopy(target)}},
        }
        interaction = self._interaction(command, data, self._author(user, channel), channel)
        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction.payload

    # ----------------------------------------------------------------------------- the bot

    async def drop_connections(self, code: int = 4000) -> int:
        """Close every bot socket from the server side (sessions stay resumable).

        With the default 4000 ("unknown error") discord.py reconnects and RESUMEs. Returns
        how many sockets were closed.
        """
        return await self.gateway.drop_connections(code)

    async def drop_gateway(self, code: int = 4000, *, abrupt: bool = False) -> int:
        """Drop the bot's gateway connections; sessions stay resumable, and what is dispatched
        meanwhile is replayed on RESUME. ``abrupt``: cut the TCP connection with no close frame
        (a network failure; events already written may never be read); else close with
        ``code``. Returns how many connections were dropped."""
        return await self.gateway.drop_connections(code, abrupt=abrupt)

    def subscribe(self, channel_id: int | None = None) -> Subscription:
        """A queue receiving the feed's events (`events`), of one channel or all of them.

        It holds at most ``Limits.queue`` events; a reader that falls behind loses the oldest
        (counted in its ``dropped``).
        """
        return self.events.subscribe(channel_id)

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop feeding a queue from ``subscribe``."""
        self.events.unsubscribe(queue)

    async def wait_for_message(
        self, predicate: Predicate | None = None, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first message by the bot matching ``predicate`` (already there or arriving).

        Messages are checked as they are created and again each time they are edited, so a
        predicate may wait for a particular state. Raises ``asyncio.TimeoutError``.
        """
        return await self.events.wait_for_message(predicate or (lambda _m: True), timeout)

    async def wait_for_reply(self, message_id: int | str, *, timeout: float = 10.0) -> dict:
        """The bot's answer to a message or an interaction, by that message/interaction id.

        Matches a bot message replying to ``message_id`` (``message_reference``) or
        responding to the interaction ``message_id`` (``interaction_metadata.id``; a deferred
        "thinking" message only counts once it has been filled in).
        """
        wanted = str(message_id)

        def is_reply(message: dict[str, Any]) -> bool:
            if (message.get("message_reference") or {}).get("message_id") == wanted:
                return True
            metadata = message.get("interaction_metadata") or {}
            return metadata.get("id") == wanted and not message["flags"] & FLAG_LOADING

        return await self.wait_for_message(is_reply, timeout=timeout)


def _content_type(item: Sequence[Any]) -> str | None:
    return item[2] if len(item) > 2 else None
