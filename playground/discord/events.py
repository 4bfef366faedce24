"""Where every change to messages and typing goes: the bot's gateway, the feed of events for
pages and tests (`subscribe`), and the tests waiting for a bot message (`wait_for_message`).

Feed events are ``{"type": ..., "data": ...}``: ``message_create``/``message_update`` (data:
the message), ``message_delete`` (``{"id", "channel_id"}``) and ``typing_start``
(``{"user_id", "channel_id", "guild_id", "timestamp", "user"}``). A subscriber's queue holds at
most ``Limits.queue`` events: a subscriber that falls behind loses the oldest, and its
``dropped`` count says how many.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from playground.discord.protocol import FLAG_EPHEMERAL
from playground.discord.state import Channel, append_bounded

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer

Predicate = Callable[[dict[str, Any]], bool]


class Subscription(asyncio.Queue[dict[str, Any]]):
    """A bounded queue of feed events, for one channel or (``channel_id=None``) all."""

    def __init__(self, maxsize: int, channel_id: int | None = None) -> None:
        super().__init__(maxsize)
        self.channel_id = channel_id
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        """Queue an event; when full, the oldest waiting one is dropped to make room."""
        if self.channel_id is not None and int(event["data"]["channel_id"]) != self.channel_id:
            return
        if self.full():
            self.get_nowait()
            self.dropped += 1
        self.put_nowait(event)


@dataclass
class _Waiter:
    predicate: Predicate
    future: asyncio.Future[dict[str, Any]]


@dataclass
class _Condition:
    check: Callable[[], Any]  # the awaited result, or None while it is not there yet
    future: asyncio.Future[Any]


class Events:
    """The server's fan-out of message and typing events."""

    def __init__(self, server: DiscordServer) -> None:
        self.server = server
        self._subscribers: list[Subscription] = []
        self._waiters: list[_Waiter] = []
        self._conditions: list[_Condition] = []

    # ----------------------------------------------------------------------------- the feed

    def subscribe(self, channel_id: int | None = None) -> Subscription:
        queue = Subscription(self.server.state.limits.queue, channel_id)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)  # type: ignore[arg-type]

    def _publish(self, event_type: str, data: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            queue.offer({"type": event_type, "data": copy.deepcopy(data)})

    # ----------------------------------------------------------------------------- messages

    def _gateway_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message as the gateway sends it: with the author's ``member`` in its guild."""
        state = self.server.state
        data = copy.deepcopy(message)
        guild_id = message.get("guild_id")
        guild = state.guilds.get(int(guild_id)) if guild_id else None
        author_id = int(message["author"]["id"])
        if "webhook_id" not in message and guild is not None and author_id in guild.members:
            data["member"] = state.member(guild, author_id, with_user=False)
        return data

    async def _message_event(self, kind: str, message: dict[str, Any]) -> None:
        self._publish(f"message_{kind}", message)
        self._check_waiters(message)
        self.check_conditions()
        if not message["flags"] & FLAG_EPHEMERAL:
            data = self._gateway_message(message)
            await self.server.gateway.dispatch(f"MESSAGE_{kind.upper()}", data)

    async def message_created(self, message: dict[str, Any]) -> dict[str, Any]:
        """Keep a new message and tell everyone (older ones past the limit are forgotten)."""
        self.server.state.add_message(message)
        await self._message_event("create", message)
        return message

    async def message_updated(self, message: dict[str, Any]) -> None:
        await self._message_event("update", message)

    async def message_deleted(self, message: dict[str, Any]) -> None:
        self.server.state.remove_message(message)
        data = {"id": message["id"], "channel_id": message["channel_id"]}
        self._publish("message_delete", data)
        self.check_conditions()
        if not message["flags"] & FLAG_EPHEMERAL:
            event = {**data, **({"guild_id": message["guild_id"]} if "guild_id" in message else {})}
            await self.server.gateway.dispatch("MESSAGE_DELETE", event)

    def reactions_changed(self, message: dict[str, Any]) -> None:
        """Reactions show on pages as an updated message (the bot gets its own events)."""
        self._publish("message_update", message)

    def typing(self, user_id: int, channel: Channel) -> dict[str, Any]:
        """Record that someone started typing; returns TYPING_START's data (no member)."""
        server = self.server
        now = time.time()
        append_bounded(server.typing_events, (user_id, now), server.state.limits.records)
        data = {
            "user_id": str(user_id),
            "channel_id": str(channel.id),
            "guild_id": str(channel.guild_id),
            "timestamp": int(now),
        }
        user = copy.deepcopy(server.state.users.get(user_id))
        self._publish("typing_start", {**data, "user": user})
        return data

    # ----------------------------------------------------------------------------- waiting

    def _is_bot_message(self, message: dict[str, Any]) -> bool:
        return int(message["author"]["id"]) == self.server.application_id

    def _check_waiters(self, message: dict[str, Any]) -> None:
        if not self._is_bot_message(message):
            return
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
                continue
            try:
                matched = waiter.predicate(message)
            except Exception as exc:
                waiter.future.set_exception(exc)
                self._waiters.remove(waiter)
                continue
            if matched:
                waiter.future.set_result(message)
                self._waiters.remove(waiter)

    async def wait_for_message(self, predicate: Predicate, timeout: float) -> dict[str, Any]:
        for message in self.server.state.all_messages():
            if self._is_bot_message(message) and predicate(message):
                return message
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def check_conditions(self) -> None:
        """Look again at what `wait_until` waits for (after a message or an interaction
        changed)."""
        for condition in list(self._conditions):
            if condition.future.done():
                self._conditions.remove(condition)
                continue
            try:
                result = condition.check()
            except Exception as exc:
                condition.future.set_exception(exc)
                self._conditions.remove(condition)
                continue
            if result is not None:
                condition.future.set_result(result)
                self._conditions.remove(condition)

    async def wait_until(self, check: Callable[[], Any], timeout: float) -> Any:
        """``check()``'s first result that is not None, looked at now and after each change;
        raises ``asyncio.TimeoutError`` (or whatever ``check`` raises)."""
        result = check()
        if result is not None:
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        condition = _Condition(check, future)
        self._conditions.append(condition)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._conditions.remove(condition)

    def close(self) -> None:
        for waiter in [*self._waiters, *self._conditions]:
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters.clear()
        self._conditions.clear()
