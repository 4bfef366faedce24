"""`!dataset` as the data grows: its queries (the summary and the quota's usage) at 200,000 votes.

A temporary SQLite store is filled at schema 0004 (before `server_images`) with `--votes` votes
over `--servers` servers, their sizes drawn from a Zipf law (a few busy servers, many quiet
ones), cast by `--members` members (each server's from its own pool, a few moderators), on
images each server posted (2.5 votes per image on average, 85% agreeing), over 60 days, with a
published training 20 days ago. Then, for the busiest server and the median one:

* before: the summary and usage as they were up to 0004 (every vote of the server read and
  tallied in Python; the usage joined each reference to its image), on the 0004 schema;
* after: `DatasetStore.summary` and `usage` on the same data once migration 0005 has filled
  `server_images` (the time of that migration is reported too).

Both must give the same figures (a check). The two are timed one after the other (the schema
differs), `--rounds` times each, after a warm-up.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._common import Report, Stats, collect, parser, run_main

TARGET_MS = 50.0
FIRST_GUILD = 10**17
FIRST_USER = 10**15
CHUNK = 20_000


def build(folder: Path, votes: int, servers: int, members: int, seed: int = 0) -> list[int]:
    """The store at 0004 in `folder`, filled as the module says; the servers, busiest first."""
    from alembic import command
    from sqlalchemy import insert

    from dataset.database import alembic_config, make_engine, sqlite_url
    from dataset.schema import Image, ImageRef, Training, Vote

    rng = random.Random(seed)
    now = datetime.now(UTC)
    weights = [1 / rank for rank in range(1, servers + 1)]
    total = sum(weights)
    guilds = [FIRST_GUILD + index for index in range(servers)]
    images: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    ballots: list[dict[str, Any]] = []
    for guild, weight in zip(guilds, weights, strict=True):
        wanted = max(1, round(votes * weight / total))
        shas = [
            hashlib.sha256(f"{seed}:{guild}:{n}".encode()).hexdigest()
            for n in range(max(1, round(wanted / 2.5)))
        ]
        truth = [rng.choice(("jedi", "sith")) for _ in shas]
        pool = rng.sample(
            range(members), min(members, max(20, round(members * weight / total * 4)))
        )
        moderators = set(pool[: max(1, len(pool) // 30)])
        cast: dict[tuple[int, int], None] = {}
        while len(cast) < min(wanted, len(shas) * len(pool)):
            cast[rng.randrange(len(shas)), rng.choice(pool)] = None
        posted: dict[int, tuple[int, datetime]] = {}
        for index, member in cast:
            at = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            label = (
                truth[index] if rng.random() < 0.85 else ("jedi", "sith")[truth[index] == "jedi"]
            )
            ballots.append(
                {
                    "image_sha256": shas[index],
                    "user_id": FIRST_USER + member,
                    "guild_id": guild,
                    "label": label,
                    "source": "button",
                    "moderator": member in moderators,
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if index not in posted or at < posted[index][1]:
                posted[index] = (member, at)
        for index, (member, at) in posted.items():
            images.append(
                {
                    "sha256": shas[index],
                    "size": rng.randrange(20_000, 400_000),
                    "format": "PNG",
                    "width": 200,
                    "height": 200,
                    "first_seen": at,
                    "guild_id": guild,
                    "filename": "",
                }
            )
            refs.append(
                {
                    "guild_id": guild,
                    "image_sha256": shas[index],
                    "posted_by": FIRST_USER + member,
                    "created_at": at,
                }
            )
    published = now - timedelta(days=20)
    engine = make_engine(sqlite_url(folder))
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0004")
        for table, rows in ((Image, images), (ImageRef, refs), (Vote, ballots)):
            for start in range(0, len(rows), CHUNK):
                connection.execute(insert(table), rows[start : start + CHUNK])
        connection.execute(
            insert(Training),
            [
                {
                    "status": "published",
                    "scope": 0,
                    "kind": "full",
                    "host": "bench",
                    "params": {},
                    "result": {},
                    "started_at": published,
                    "heartbeat_at": published,
                }
            ],
        )
    engine.dispose()
    return guilds


def figures_before(session: Any, guild: int, class_names: tuple[str, ...]) -> tuple:
    """`!dataset`'s queries as they were up to 0004 (`DatasetStore.summary` and `usage`)."""
    from sqlalchemy import func, select

    from dataset.labels import split_of, tally
    from dataset.queries import CONFLICTS_LISTED
    from dataset.schema import Image, ImageRef, Training, Vote

    held = select(ImageRef.image_sha256).where(ImageRef.guild_id == guild)
    voted = select(Vote.image_sha256).where(Vote.guild_id == guild)
    images = session.scalar(select(func.count()).select_from(held.union(voted).subquery())) or 0
    votes: dict[str, list[tuple[str, bool, datetime]]] = defaultdict(list)
    for sha256, label, moderator, created in session.execute(
        select(Vote.image_sha256, Vote.label, Vote.moderator, Vote.created_at).where(
            Vote.guild_id == guild
        )
    ):
        votes[sha256].append((label, moderator, created))
    last = session.scalar(
        select(func.max(Training.started_at)).where(
            Training.status == "published", Training.scope.in_((guild, 0))
        )
    )
    contributors = session.execute(
        select(Vote.user_id, func.count().label("n"))
        .where(Vote.guild_id == guild)
        .group_by(Vote.user_id)
        .order_by(func.count().desc(), Vote.user_id)
        .limit(5)
    ).all()
    counts = {name: {"train": 0, "holdout": 0} for name in class_names}
    conflicts, since = [], 0
    for sha256, rows in votes.items():
        result = tally(((label, moderator) for label, moderator, _ in rows), class_names)
        if result.conflict:
            conflicts.append((sha256, result.votes))
        if result.label is None:
            continue
        counts[result.label][split_of(sha256)] += 1
        if last is None or min(created for *_, created in rows) > last:
            since += 1
    conflicts.sort(key=lambda item: (-sum(item[1].values()), item[0]))
    usage = session.execute(
        select(func.count(), func.coalesce(func.sum(Image.size), 0))
        .select_from(ImageRef)
        .join(Image, Image.sha256 == ImageRef.image_sha256)
        .where(ImageRef.guild_id == guild)
    ).one()
    return (
        counts,
        since,
        conflicts[:CONFLICTS_LISTED],
        len(conflicts),
        images,
        [tuple(row) for row in contributors],
        sum(map(len, votes.values())),
        (int(usage[0]), int(usage[1])),
    )


def figures_after(store: Any, guild: int) -> tuple:
    summary, usage = store.summary(guild), store.usage(guild)
    return (
        summary.counts,
        summary.since_last_training,
        summary.conflicts,
        summary.conflict_count,
        summary.images,
        summary.contributors,
        summary.votes,
        (usage.images, usage.bytes),
    )


def timed(fn: Any, rounds: int) -> tuple[Stats, Any]:
    result = fn()  # the warm-up: the database's pages in the page cache
    samples = []
    for _ in range(rounds):
        collect()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats.of(samples).scaled(1e3), result


def report(args: argparse.Namespace) -> Report:
    from sqlalchemy.orm import Session

    from dataset import DatasetStore
    from dataset.database import make_engine, sqlite_url
    from dataset.labels import CLASS_NAMES

    votes = 20_000 if args.quick else args.votes
    rounds = 5 if args.quick else args.rounds
    out = Report("dataset_scale", "!dataset's queries at 200,000 votes, before and after 0005")
    out.header(
        f"votes {votes:,}, servers {args.servers}, members {args.members:,}, rounds {rounds}"
    )
    with tempfile.TemporaryDirectory(prefix="jedisith-dataset-scale-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        guilds = build(folder, votes, args.servers, args.members)
        out.figure("build_s", "filling the 0004 store", time.perf_counter() - started, "s")
        chosen = {"busiest": guilds[0], "median": guilds[len(guilds) // 2]}
        engine = make_engine(sqlite_url(folder))
        before: dict[str, tuple[Stats, Any]] = {}
        with Session(engine) as session:
            for name, guild in chosen.items():
                before[name] = timed(
                    lambda g=guild: figures_before(session, g, CLASS_NAMES), rounds
                )
        engine.dispose()
        started = time.perf_counter()
        store = DatasetStore.open(folder)  # 0004 -> 0005_limits: fills server_images
        out.figure(
            "migrate_s",
            "migration 0005 (filling server_images)",
            time.perf_counter() - started,
            "s",
        )
        try:
            out.section("the summary and the usage of one server (ms), before | after")
            for name, guild in chosen.items():
                after, figures = timed(lambda g=guild: figures_after(store, g), rounds)
                old, old_figures = before[name]
                out.check(f"{name} figures", figures == old_figures, f"{figures[6]:,} votes")
                out.stats(f"{name}_before_ms", f"{name} server, before (0004)", old, "ms", 1)
                out.stats(f"{name}_after_ms", f"{name} server, after (0005)", after, "ms", 1)
                print(
                    f"   {name:<8} {figures[6]:>7,} votes {figures[4]:>7,} images   "
                    f"before {old.median:8.1f} ms | after {after.median:6.1f} ms   "
                    f"({old.median / after.median:.0f}x)",
                    flush=True,
                )
                out.outcome(
                    f"{name} server's !dataset queries (median)",
                    after.median,
                    unit="ms",
                    target=TARGET_MS,
                    better="lower",
                    note=f"before: {old.median:.0f} ms",
                )
        finally:
            store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser("dataset_scale", __doc__.splitlines()[0])
    p.add_argument("--votes", type=int, default=200_000)
    p.add_argument("--servers", type=int, default=50)
    p.add_argument("--members", type=int, default=5_000)
    p.add_argument("--rounds", type=int, default=15)
    return run_main(report, p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
