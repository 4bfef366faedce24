"""Shards: which guild a shard holds, how SHARD_COUNT and SHARD_IDS are written, how shards are
split among processes, and IDENTIFY paced by Discord's `max_concurrency`.

Discord gives guild ``g`` to shard ``(g >> 22) % shard_count``. A bot may start at most
``max_concurrency`` sessions per 5 seconds, one per *bucket* (``shard_id % max_concurrency``);
an IDENTIFY beyond that is answered with INVALID_SESSION. discord.py's own
``before_identify_hook`` sleeps 5 s before every IDENTIFY but the first of its process: safe
inside one process, but slower than needed when ``max_concurrency`` > 1, and blind to the other
processes of a cluster, each of whose first IDENTIFY goes at once. `IdentifyPacer` keeps the
buckets instead, in this process and, through a lock file per bucket, across every process
sharing its folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS: pacing stays in-process
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

AUTO = "auto"
# Seconds between two IDENTIFYs of one bucket: Discord's 5, and a quarter of a second so that
# two sent 5 s apart do not arrive closer than that.
IDENTIFY_INTERVAL = 5.25
_RANGE = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")
_LOCK_POLL = 0.05


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that receives ``guild_id``'s events: ``(guild_id >> 22) % shard_count``."""
    return (int(guild_id) >> 22) % shard_count


# -- the settings' two words -------------------------------------------------------------------


def parse_shard_count(value: Any) -> int | str | None:
    """SHARD_COUNT: a number of shards (at least 1) or ``auto``; None: no sharding."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if not text.isdigit():
            raise ValueError("expected a number of shards, or auto")
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a number of shards, or auto")
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def parse_shard_ids(value: Any) -> tuple[int, ...] | None:
    """SHARD_IDS: ``0,1``, ``0-3``, ``0-1,6`` (or a list of numbers), as a sorted tuple."""
    if value is None:
        return None
    if isinstance(value, str):
        ids: list[int] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            match = _RANGE.match(part)
            if match is None:
                raise ValueError(f"expected shard numbers like 0,1 or 0-3, not {part!r}")
            first, last = int(match[1]), int(match[2] or match[1])
            if last < first:
                raise ValueError(f"{part!r} is not a range: write the smaller shard first")
            ids.extend(range(first, last + 1))
    elif isinstance(value, Iterable):
        ids = list(value)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise ValueError("expected shard numbers (0 or more)")
    else:
        raise ValueError("expected shard numbers like 0,1 or 0-3")
    if not ids:
        raise ValueError("names no shard")
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"shard {repeated[0]} is listed twice")
    return tuple(sorted(ids))


def shard_ranges(ids: Iterable[int]) -> str:
    """``0-3,6``: shard ids written as SHARD_IDS takes them, runs collapsed."""
    parts: list[str] = []
    for first, last in _runs(sorted(ids)):
        parts.append(str(first) if first == last else f"{first}-{last}")
    return ",".join(parts)


def _runs(ids: list[int]) -> Iterator[tuple[int, int]]:
    start = previous = None
    for shard in ids:
        if start is None:
            start = previous = shard
        elif shard == previous + 1:  # type: ignore[operator]
            previous = shard
        else:
            yield start, previous  # type: ignore[misc]
            start = previous = shard
    if start is not None:
        yield start, previous  # type: ignore[misc]


def split_shards(shard_count: int, processes: int) -> list[range]:
    """``shard_count`` shards in ``processes`` contiguous ranges, sizes differing by at most
    one (the first ones larger): 10 in 3 is 0-3, 4-6, 7-9."""
    if processes < 1 or shard_count < processes:
        raise ValueError(f"cannot split {shard_count} shards among {processes} processes")
    size, extra = divmod(shard_count, processes)
    ranges, start = [], 0
    for index in range(processes):
        end = start + size + (1 if index < extra else 0)
        ranges.append(range(start, end))
        start = end
    return ranges


# -- latency -----------------------------------------------------------------------------------


def describe_latencies(latencies: Iterable[tuple[int, float]]) -> str:
    """``shard 0 41 ms, shard 1 38 ms`` (``no heartbeat yet`` before the first)."""
    words = []
    for shard, seconds in sorted(latencies):
        shown = f"{seconds * 1000:.0f} ms" if math.isfinite(seconds) else "no heartbeat yet"
        words.append(f"shard {shard} {shown}")
    return ", ".join(words) or "no shard connected"


# -- IDENTIFY pacing ---------------------------------------------------------------------------


class IdentifyPacer:
    """Lets a shard IDENTIFY once its bucket's previous IDENTIFY is ``interval`` seconds old.

    ``folder`` (optional) holds one lock file per bucket, written with the wall-clock time of
    the bucket's last IDENTIFY while its lock is held: every process sharing the folder (a
    cluster's processes on one machine, or on storage whose locks work across machines) is
    paced together. Without it, or where it cannot be written, only this process is.
    """

    def __init__(
        self,
        max_concurrency: int = 1,
        folder: Path | None = None,
        *,
        interval: float = IDENTIFY_INTERVAL,
    ) -> None:
        self.max_concurrency = max(1, int(max_concurrency))
        self.folder = folder if fcntl is not None else None
        self.interval = interval
        self._locks: dict[int, asyncio.Lock] = {}
        self._last: dict[int, float] = {}  # bucket -> time.time() of its last IDENTIFY here

    def bucket(self, shard_id: int | None) -> int:
        return (shard_id or 0) % self.max_concurrency

    @contextlib.asynccontextmanager
    async def turn(self, shard_id: int | None) -> AsyncIterator[float]:
        """Hold ``shard_id``'s bucket until its IDENTIFY is sent: waits (yielding how long)
        until the bucket's last IDENTIFY is `interval` old, and on leaving records now as its
        time (also when the block fails: an IDENTIFY may have gone out)."""
        bucket = self.bucket(shard_id)
        lock = self._locks.setdefault(bucket, asyncio.Lock())
        started = time.monotonic()
        async with lock, self._shared(bucket) as shared:
            last = max(self._last.get(bucket, 0.0), _read_time(shared))
            delay = min(max(last + self.interval - time.time(), 0.0), self.interval)
            if delay:
                await asyncio.sleep(delay)
            waited = time.monotonic() - started
            if waited >= 0.5:
                log.info("shard %s waited %.1f s for its IDENTIFY turn", shard_id, waited)
            try:
                yield waited
            finally:
                now = time.time()
                self._last[bucket] = now
                _write_time(shared, now)

    async def wait(self, shard_id: int | None) -> float:
        """Until ``shard_id`` may IDENTIFY, which it must do at once (the time is recorded on
        return); returns how long it waited."""
        async with self.turn(shard_id) as waited:
            return waited

    @contextlib.asynccontextmanager
    async def _shared(self, bucket: int) -> AsyncIterator[int | None]:
        """The bucket's lock file, locked (None when there is no usable folder)."""
        if self.folder is None:
            yield None
            return
        path = self.folder / f"identify-{self.max_concurrency}-{bucket}.time"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            log.warning(
                "cannot pace IDENTIFY with other processes through %s (%s): pacing this "
                "process only",
                path,
                error.strerror or error,
            )
            self.folder = None
            yield None
            return
        try:
            # Polled, not a blocking flock: that would hold an executor thread (and the
            # shutdown) for as long as another process keeps its turn.
            deadline = time.monotonic() + 4 * self.interval
            while not _try_lock(fd):
                if time.monotonic() > deadline:  # a stuck holder: go by this process alone
                    log.warning("the IDENTIFY lock %s is held too long; going ahead", path)
                    break
                await asyncio.sleep(_LOCK_POLL)
            yield fd
        finally:
            os.close(fd)  # releases the lock too


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[union-attr]
    except BlockingIOError:
        return False
    return True


def _read_time(fd: int | None) -> float:
    if fd is None:
        return 0.0
    try:
        return float(os.pread(fd, 64, 0).decode().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def _write_time(fd: int | None, when: float) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        data = f"{when:.3f}\n".encode()
        os.pwrite(fd, data.ljust(64), 0)
