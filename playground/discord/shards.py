"""Sharding as Discord does it: which shard holds a guild, how many shards ``GET /gateway/bot``
recommends, the session start limit, and which IDENTIFYs the gateway refuses.

A guild's events go to shard ``(guild_id >> 22) % shard_count`` (events of no guild, DMs, to
shard 0); a session identified without ``shard`` holds every guild. An IDENTIFY is refused:

* with close code 4010 (Invalid shard) when ``shard`` is not ``[id, count]`` with
  ``0 <= id < count``;
* with close code 4011 (Sharding required) when its shard would hold more guilds than
  ``Sharding.max_guilds_per_shard`` (no ``shard`` at all: every guild);
* with INVALID_SESSION (op 9, not resumable) when ``Sharding.pace_identify`` is on and the
  previous IDENTIFY of its bucket (``shard_id % max_concurrency``) is under 5 s old, as
  Discord answers a bot that exceeds ``max_concurrency``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

IDENTIFY_WINDOW = 5.0  # seconds: max_concurrency IDENTIFYs per bucket per window
SESSION_START_PERIOD_MS = 24 * 60 * 60 * 1000
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011

Shard = tuple[int, int]  # (shard id, shard count)


@dataclass(frozen=True)
class Sharding:
    """How the look-alike shares its guilds among shards, and what it allows.

    Discord recommends about one shard per 1,000 guilds and refuses a shard of more than
    2,500; tests use small numbers so that eight guilds need shards.
    """

    guilds_per_shard: int = 1000  # /gateway/bot recommends ceil(guilds / guilds_per_shard)
    max_guilds_per_shard: int = 2500  # a shard that would hold more: closed with 4011
    max_concurrency: int = 1  # IDENTIFYs per 5 s, one per bucket (shard_id % max_concurrency)
    pace_identify: bool = False  # refuse an IDENTIFY that exceeds max_concurrency
    session_starts: int = 1000  # session starts per 24 h (reported, not enforced)

    def __post_init__(self) -> None:
        for name in ("guilds_per_shard", "max_guilds_per_shard", "max_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"Sharding.{name} must be at least 1")

    def recommended_shards(self, guild_count: int) -> int:
        return max(1, math.ceil(guild_count / self.guilds_per_shard))


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that holds ``guild_id`` among ``shard_count``."""
    return (int(guild_id) >> 22) % shard_count


def holds(shard: Shard | None, guild_id: int | str | None) -> bool:
    """Whether a session on ``shard`` (None: unsharded) gets events of ``guild_id`` (None: a DM
    or no guild, which go to shard 0)."""
    if shard is None:
        return True
    shard_id, count = shard
    if guild_id is None:
        return shard_id == 0
    return shard_of(int(guild_id), count) == shard_id


@dataclass
class Identify:
    """One IDENTIFY the gateway received: when (``time.monotonic()``), for which shard, and
    how it was answered (``refused``: "" when a session started, else the reason)."""

    at: float
    shard: Shard | None
    refused: str = ""


@dataclass
class SessionStarts:
    """Every IDENTIFY, the session start limit they leave, and the pacing by bucket."""

    sharding: Sharding
    identifies: list[Identify] = field(default_factory=list)
    _first_start: float | None = None
    _last_in_bucket: dict[int, float] = field(default_factory=dict)

    @property
    def started(self) -> int:
        return sum(1 for i in self.identifies if not i.refused)

    @property
    def refused(self) -> list[Identify]:
        return [i for i in self.identifies if i.refused]

    def limit(self) -> dict[str, Any]:
        """``session_start_limit`` as ``GET /gateway/bot`` reports it."""
        total = self.sharding.session_starts
        reset_after = SESSION_START_PERIOD_MS
        if self._first_start is not None:
            elapsed = int((time.monotonic() - self._first_start) * 1000)
            reset_after = max(SESSION_START_PERIOD_MS - elapsed, 0)
        return {
            "total": total,
            "remaining": max(total - self.started, 0),
            "reset_after": reset_after,
            "max_concurrency": self.sharding.max_concurrency,
        }

    def check(self, raw: Any, guild_ids: Iterable[int]) -> tuple[Shard | None, int, str]:
        """The shard an IDENTIFY asks for, and a close code and reason when it is refused
        (0 and "" otherwise)."""
        shard: Shard | None = None
        if raw is not None:
            valid = (
                isinstance(raw, list)
                and len(raw) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in raw)
                and raw[1] >= 1
                and 0 <= raw[0] < raw[1]
            )
            if not valid:
                return None, CLOSE_INVALID_SHARD, "Invalid shard."
            shard = (raw[0], raw[1])
        held = sum(1 for g in guild_ids if holds(shard, g))
        if held > self.sharding.max_guilds_per_shard:
            return shard, CLOSE_SHARDING_REQUIRED, "Sharding required."
        return shard, 0, ""

    def admit(self, shard: Shard | None) -> bool:
        """Record a valid IDENTIFY; False when it exceeds ``max_concurrency`` (paced only)."""
        now = time.monotonic()
        bucket = (shard[0] if shard else 0) % self.sharding.max_concurrency
        last = self._last_in_bucket.get(bucket)
        if self.sharding.pace_identify and last is not None and now - last < IDENTIFY_WINDOW:
            self.identifies.append(Identify(now, shard, "max_concurrency"))
            return False
        self._last_in_bucket[bucket] = now
        if self._first_start is None:
            self._first_start = now
        self.identifies.append(Identify(now, shard))
        return True

    def refuse(self, shard: Shard | None, reason: str) -> None:
        self.identifies.append(Identify(time.monotonic(), shard, reason))
