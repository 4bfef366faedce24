"""The test driver: what tests and the playground's page do as people in the guilds (post,
delete, type; use commands and buttons: `invocations`), what they wait for (the bot's
messages and replies), and the event feed (`subscribe`). `DiscordServer` is a `Driver`.

Everything happens in the default channel unless a ``channel_id`` is given; people are given
as user dicts (at least ``username``; unknown users join the channel's guild; ``roles`` sets
theirs, see `people`), by default the human, "padawan".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from playground.discord import payloads
from playground.discord.channels import mentions
from playground.discord.events import Predicate, Subscription
from playground.discord.invocations import File, Invocations, file_content_type
from playground.discord.protocol import FLAG_LOADING, snowflake

if TYPE_CHECKING:
    from playground.discord.faults import Faults


class Driver(Invocations):
    """Acting as the guilds' people, and watching what the bot does."""

    faults: Faults

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
            self.cdn.store(channel.id, item[0], item[1], content_type=file_content_type(item))
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

    async def drop_shard(self, shard_id: int, code: int = 4000, *, abrupt: bool = False) -> int:
        """Drop the connection of one shard's session, as ``drop_gateway`` does for all: it
        stays resumable, and what its guilds see meanwhile is replayed on RESUME. Returns 1, or
        0 when no session of that shard is connected."""
        return await self.gateway.drop_shard(shard_id, code, abrupt=abrupt)

    def shard_sessions(self) -> dict[int, str]:
        """The session id of each connected shard, by shard id (unsharded sessions left out)."""
        return {shard: s.session_id for shard, s in self.gateway.shard_sessions().items()}

    async def wait_for_shards(
        self, shard_ids: Iterable[int], *, timeout: float = 30.0
    ) -> dict[int, str]:
        """Until each of ``shard_ids`` has a connected session (identified, or resumed);
        returns their session ids by shard. Raises ``TimeoutError``."""
        wanted = set(shard_ids)
        deadline = asyncio.get_running_loop().time() + timeout
        while not wanted <= set(sessions := self.shard_sessions()):
            if asyncio.get_running_loop().time() > deadline:
                missing = sorted(wanted - set(sessions))
                raise TimeoutError(f"shards {missing} not connected within {timeout} s")
            await asyncio.sleep(0.02)
        return {shard: sessions[shard] for shard in sorted(wanted)}

    def delivered_to(self, event_id: int | str) -> list[tuple[str, tuple[int, int] | None]]:
        """The sessions a MESSAGE_CREATE or INTERACTION_CREATE (by message or interaction id)
        was sent to, as ``(session id, (shard id, shard count) or None)``: one per shard
        holding its guild (unsharded sessions hold them all). The newest ``Limits.records``
        are kept."""
        return list(self.gateway.deliveries.get(str(event_id), []))

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

        Matches a bot message replying to ``message_id`` (``message_reference``) or made
        for the interaction ``message_id`` (``interaction_metadata.id``: a response, once a
        deferred "thinking" one is filled in, or a followup; ephemeral ones too). A click
        answered with type 6 or 7 makes no message: see ``wait_for_interaction_response``.
        """
        wanted = str(message_id)

        def is_reply(message: dict[str, Any]) -> bool:
            if (message.get("message_reference") or {}).get("message_id") == wanted:
                return True
            metadata = message.get("interaction_metadata") or {}
            return metadata.get("id") == wanted and not message["flags"] & FLAG_LOADING

        return await self.wait_for_message(is_reply, timeout=timeout)
