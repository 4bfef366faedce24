"""Interactions a person starts, and waiting for their answers: slash and message commands,
button clicks (MESSAGE_COMPONENT). The second part of `Driver`.

Which wait to use:

* ``wait_for_reply(interaction_id)`` (in `Driver`): the first bot message made for the
  interaction, the response of a type 4 or 5 callback (once filled in) or a followup;
  ephemeral ones included. A type 6 or 7 answer makes no message: it never matches.
* ``wait_for_interaction_response(interaction_id)``: the answer, whatever its type: the
  response message (4; 5 once filled in), or the clicked message (6: as it is; 7: as
  updated). Followups after a 6 or 7 are ``wait_for_reply``'s.
* ``wait_for_ack(interaction_id)``: the callback type, as soon as there is one.
"""

from __future__ import annotations

import copy
import itertools
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from playground.discord import components
from playground.discord.people import People
from playground.discord.protocol import (
    COMMAND_CHAT_INPUT,
    COMMAND_MESSAGE,
    COMPONENT_BUTTON,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_APPLICATION_COMMAND,
    INTERACTION_MESSAGE_COMPONENT,
    OPT_ATTACHMENT,
    OPT_SUB_COMMAND,
    OPT_SUB_COMMAND_GROUP,
    PRIVATE_APP_PERMISSIONS,
    snowflake,
)
from playground.discord.state import Channel, Interaction

if TYPE_CHECKING:
    from playground.discord.cdn import Cdn
    from playground.discord.events import Events
    from playground.discord.gateway import Gateway

File = tuple[str, bytes] | tuple[str, bytes, str]  # (filename, data[, content_type])


def file_content_type(item: Sequence[Any]) -> str | None:
    return item[2] if len(item) > 2 else None


class Invocations(People):
    """Using the bot's commands and buttons as a person."""

    events: Events
    gateway: Gateway
    cdn: Cdn
    application_id: int
    max_upload_bytes: int

    def _interaction(
        self,
        kind: int,
        data: dict[str, Any],
        user: dict[str, Any],
        channel: Channel,
        *,
        command_type: int | None = None,
        message: dict[str, Any] | None = None,
    ) -> Interaction:
        """A new interaction by ``user`` in ``channel`` (``message``: the clicked one); in a
        DM or group DM, one from the bot's install to ``user``'s account (`_private`)."""
        state = self.state
        if channel.guild_id is None:
            return self._private(kind, data, user, channel, command_type, message)
        guild = state.guild_of(channel)
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
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
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        interaction = Interaction(
            payload=payload,
            command_type=command_type,
            message_id=None if message is None else int(message["id"]),
        )
        state.add_interaction(interaction)
        return interaction

    def _private(
        self,
        kind: int,
        data: dict[str, Any],
        user: dict[str, Any],
        channel: Channel,
        command_type: int | None,
        message: dict[str, Any] | None = None,
    ) -> Interaction:
        """An interaction in a DM (context 1) or group DM (context 2) from the bot installed to
        ``user``'s account: no guild or member, the ``user``, and the owner of the install."""
        context = 1 if channel.payload["type"] == 1 else 2
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "channel": copy.deepcopy(channel.payload),
            "user": copy.deepcopy(user),
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "app_permissions": str(PRIVATE_APP_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"1": str(user["id"])},
            "context": context,
            "attachment_size_limit": self.max_upload_bytes,
        }
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        message_id = None if message is None else int(message["id"])
        interaction = Interaction(payload=payload, command_type=command_type, message_id=message_id)
        self.state.add_interaction(interaction)
        return interaction

    def _command_interaction(
        self, command: dict[str, Any], data: dict[str, Any], user: dict[str, Any], channel: Channel
    ) -> Interaction:
        data = {"id": command["id"], "name": command["name"], "type": command["type"], **data}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        kind = INTERACTION_APPLICATION_COMMAND
        return self._interaction(kind, data, user, channel, command_type=command["type"])

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
                kind = file_content_type(item)
                stored = self.cdn.store(
                    channel.id, item[0], item[1], content_type=kind, ephemeral=True
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
        context: int = 0,
    ) -> dict[str, Any]:
        """Invoke a registered slash command as a person; returns the interaction payload.
        ``context`` 1 or 2: from the bot installed to that person's account, in their DM with
        the bot (1) or a group DM without it (2): a global command that allows both (else
        `LookupError`, as Discord does not offer it there).

        ``name`` may be ``"command sub"`` or ``"command group sub"`` for subcommands. An
        attachment option's value is ``(filename, bytes[, content_type])`` or an index into
        ``attachments``; attachment options left out take ``attachments`` in order. Other
        options are sent as given. Wait for the answer with ``wait_for_reply(id)``.
        """
        root, *path = name.split()
        if context:
            user_dict = self._user(user)
            channel = self.state.private_channel(user_dict, context, self.bot_user)
            command = self.state.find_command(root, COMMAND_CHAT_INPUT, None)
            allowed = command.get("integration_types") or [0], command.get("contexts") or [0]
            if 1 not in allowed[0] or context not in allowed[1]:
                raise LookupError(f"{root!r} is not offered to user installs in context {context}")
        else:
            channel = self._channel(channel_id)
            command = self.state.find_command(root, COMMAND_CHAT_INPUT, channel.guild_id)
            user_dict = self._author(user, channel)
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
        interaction = self._command_interaction(command, data, user_dict, channel)
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
        user_dict = self._author(user, channel)
        interaction = self._command_interaction(command, data, user_dict, channel)
        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction.payload

    async def click_button(
        self, message_id: int | str, custom_id: str, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Click a message's button as a person (default "padawan"): dispatch a
        MESSAGE_COMPONENT interaction (type 3) carrying the whole message; returns its
        payload. `LookupError` when the message has no enabled button with ``custom_id``,
        or when it is an ephemeral message shown to someone else; `DiscordError` 404 for an
        unknown message. Wait for the answer with ``wait_for_interaction_response(id)``.
        """
        message = self.state.message(int(message_id))
        button = components.find_button(message.get("components") or [], custom_id)
        channel = self.state.channel(int(message["channel_id"]))
        clicker = self._author(user, channel)
        if message["flags"] & FLAG_EPHEMERAL:
            shown_to = (message.get("interaction_metadata") or {}).get("user") or {}
            if shown_to.get("id") != clicker["id"]:
                name = shown_to.get("username", "someone else")
                raise LookupError(f"only {name} can see (and click) that ephemeral message")
        data = {"custom_id": custom_id, "component_type": COMPONENT_BUTTON, "id": button["id"]}
        kind = INTERACTION_MESSAGE_COMPONENT
        interaction = self._interaction(kind, data, clicker, channel, message=message)
        await self.gateway.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction.payload

    async def wait_for_interaction_response(
        self, interaction_id: int | str, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The answer to an interaction, whatever the callback: the response message (type
        4; type 5 once a followup or an edit has filled it in), or the clicked message
        (type 6: as it was; type 7: as updated). Ephemeral answers too. Raises
        ``asyncio.TimeoutError``; `LookupError` for an unknown interaction."""
        interaction = self.state.interaction_by_id(int(interaction_id))

        def answer() -> dict[str, Any] | None:
            if interaction.original_id is None:
                return None
            message = self.state.message(interaction.original_id)  # 404 once deleted
            return None if message["flags"] & FLAG_LOADING else message

        return await self.events.wait_until(answer, timeout)

    async def wait_for_ack(self, interaction_id: int | str, *, timeout: float = 3.0) -> int:
        """The callback type the bot answered an interaction with, once it has (Discord
        gives a bot 3 s). Raises ``asyncio.TimeoutError``; `LookupError` when unknown."""
        interaction = self.state.interaction_by_id(int(interaction_id))
        return await self.events.wait_until(lambda: interaction.response_type, timeout)
