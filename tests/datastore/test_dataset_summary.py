"""`!dataset`'s figures come from `server_images` (kept with the votes and references since
0005): after any mix of votes, changed votes, moderators, images without votes and `forget`,
they equal the figures counted from every vote, as `summary` counted them before."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import func, select

from dataset import DatasetStore, Summary, Usage, tally
from dataset.labels import split_of
from dataset.queries import CONFLICTS_LISTED
from dataset.schema import Image, ImageRef, ServerImage, Vote

MakeImage = Callable[..., bytes]
GUILDS = (2**60 + 1, 2**60 + 2)


def counted_from_every_vote(store: DatasetStore, guild: int) -> tuple[dict, int, list, int, int]:
    """(counts, labelled, conflicts, images, votes) from the votes and references themselves."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(Vote.image_sha256, Vote.label, Vote.moderator).where(Vote.guild_id == guild)
        ).all()
        held = set(
            connection.execute(
                select(ImageRef.image_sha256).where(ImageRef.guild_id == guild)
            ).scalars()
        )
    votes: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for sha256, label, moderator in rows:
        votes[sha256].append((label, moderator))
    counts = {name: {"train": 0, "holdout": 0} for name in store.class_names}
    conflicts = []
    for sha256, cast in votes.items():
        result = tally(cast, store.class_names)
        if result.conflict:
            conflicts.append((sha256, result.votes))
        if result.label is not None:
            counts[result.label][split_of(sha256)] += 1
    conflicts.sort(key=lambda item: (-sum(item[1].values()), item[0]))
    labelled = sum(sum(split.values()) for split in counts.values())
    return counts, labelled, conflicts, len(held | set(votes)), len(rows)


def voters_from_every_vote(store: DatasetStore, guild: int) -> dict[str, tuple[int, bool]]:
    """Per image voted on: the distinct members whose vote gives its label, and whether a
    moderator's does ((0, False): no label), counted from the votes themselves."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(Vote.image_sha256, Vote.user_id, Vote.label, Vote.moderator).where(
                Vote.guild_id == guild
            )
        ).all()
    votes: dict[str, list[tuple[int, str, bool]]] = defaultdict(list)
    for sha256, user, label, moderator in rows:
        votes[sha256].append((user, label, moderator))
    found = {}
    for sha256, cast in votes.items():
        label = tally([(label, moderator) for _, label, moderator in cast]).label
        mine = [(user, moderator) for user, given, moderator in cast if given == label]
        found[sha256] = (len({user for user, _ in mine}), any(m for _, m in mine))
    return found


def usage_from_references(store: DatasetStore, guild: int) -> Usage:
    with store.engine.connect() as connection:
        images, size = connection.execute(
            select(func.count(), func.coalesce(func.sum(Image.size), 0))
            .select_from(ImageRef)
            .join(Image, Image.sha256 == ImageRef.image_sha256)
            .where(ImageRef.guild_id == guild)
        ).one()
    return Usage(int(images), int(size))


def assert_agrees(store: DatasetStore) -> None:
    for guild in GUILDS:
        summary: Summary = store.summary(guild)
        counts, labelled, conflicts, images, votes = counted_from_every_vote(store, guild)
        assert summary.counts == counts and summary.labelled == labelled
        assert summary.conflicts == conflicts[:CONFLICTS_LISTED]
        assert summary.conflict_count == len(conflicts)
        assert (summary.images, summary.unlabelled, summary.votes) == (
            images,
            images - labelled,
            votes,
        )
        assert store.usage(guild) == usage_from_references(store, guild)
        recounted = voters_from_every_vote(store, guild)
        with store.engine.connect() as connection:
            kept = connection.execute(
                select(
                    ServerImage.image_sha256, ServerImage.label_voters, ServerImage.moderated
                ).where(ServerImage.guild_id == guild)
            ).all()
        assert {sha: (n, m) for sha, n, m in kept} == {
            sha: recounted.get(sha, (0, False)) for sha, _, _ in kept
        }
        held_out = [v for sha, v in recounted.items() if split_of(sha) == "holdout" and v[0]]
        for min_voters in (1, 2, 3):
            judging = sum(1 for n, moderated in held_out if moderated or n >= min_voters)
            assert summary.vouched_holdout(min_voters) == (judging, len(held_out) - judging)


def test_the_kept_figures_equal_the_votes_after_any_mix_of_changes(
    store: DatasetStore, make_image: MakeImage
) -> None:
    rng = random.Random(19)
    images = [make_image(seed) for seed in range(12)]
    users = range(1, 8)
    for step in range(160):
        guild, user = rng.choice(GUILDS), rng.choice(users)
        action = rng.random()
        if action < 0.7:
            store.add_image_and_vote(
                rng.choice(images),
                guild_id=guild,
                user_id=user,
                label=rng.choice(store.class_names),
                source=rng.choice(("button", "teach")),
                moderator=rng.random() < 0.15,
                poster_id=rng.choice(users),
                message_id=rng.randrange(6),
            )
        elif action < 0.8:
            store.add_image(rng.choice(images), guild_id=guild, posted_by=user)
        elif action < 0.9:
            store.forget_user(user, guild if rng.random() < 0.7 else None)
        elif action < 0.95:  # a deleted message takes its images out of that server
            store.forget_messages(guild, [rng.randrange(6)])
        else:
            known = store.summary(guild).conflicts
            if known:
                store.vote(known[0][0], guild_id=guild, user_id=99, label="sith", source="button")
        if step % 20 == 19:
            assert_agrees(store)
    assert_agrees(store)
    with store.engine.connect() as connection:
        rows = connection.scalar(select(func.count()).select_from(ServerImage))
    assert rows  # the mix left something to count
    for user in users:
        store.forget_user(user)
    store.forget_user(99)
    assert_agrees(store)
    with store.engine.connect() as connection:
        left = connection.execute(select(ServerImage.held, ServerImage.votes)).all()
    assert all(held and votes is None for held, votes in left)  # only what was added unvoted


def test_the_first_vote_after_the_last_published_training_counts_as_new(
    store: DatasetStore, make_image: MakeImage
) -> None:
    old, new = make_image(40), make_image(41)
    store.add_image_and_vote(old, guild_id=GUILDS[0], user_id=1, label="jedi", source="teach")
    training = store.trainings.start(
        scope=GUILDS[0],
        kind="head",
        guild_id=GUILDS[0],
        channel_id=None,
        user_id=1,
        pid=1,
        params={},
    )
    store.trainings.finish(training.id, "published", result={}, version=1)
    store.add_image_and_vote(new, guild_id=GUILDS[0], user_id=1, label="sith", source="teach")
    store.add_image_and_vote(old, guild_id=GUILDS[0], user_id=2, label="jedi", source="teach")
    summary = store.summary(GUILDS[0])
    assert summary.labelled == 2 and summary.since_last_training == 1


def test_a_summary_counts_every_conflict_and_lists_the_most_voted(
    store: DatasetStore, make_image: MakeImage
) -> None:
    guild = GUILDS[0]
    tied = [make_image(100 + n) for n in range(CONFLICTS_LISTED + 3)]
    for n, data in enumerate(tied):
        voters = 4 if n == len(tied) - 1 else 2  # the last one has the most votes
        for voter in range(voters):
            label = store.class_names[voter % 2]
            store.add_image_and_vote(
                data, guild_id=guild, user_id=voter, label=label, source="teach"
            )
    summary = store.summary(guild)
    assert summary.conflict_count == len(tied) and len(summary.conflicts) == CONFLICTS_LISTED
    assert summary.conflicts[0][1] == {"jedi": 2, "sith": 2}
    assert summary.conflicts == counted_from_every_vote(store, guild)[2][:CONFLICTS_LISTED]


def test_a_0004_store_migrated_gives_the_figures_counted_before(tmp_path) -> None:
    """benchmarks/dataset_scale.py's store, small: 0005 fills `server_images` from the votes,
    and every server's figures equal those the summary and usage of 0004 counted."""
    from sqlalchemy.orm import Session

    from benchmarks.dataset_scale import build, figures_after, figures_before
    from dataset.database import make_engine, sqlite_url

    guilds = build(tmp_path, votes=3000, servers=5, members=200)
    engine = make_engine(sqlite_url(tmp_path))
    with Session(engine) as session:
        before = {guild: figures_before(session, guild, ("jedi", "sith")) for guild in guilds}
    engine.dispose()
    with DatasetStore.open(tmp_path) as store:
        assert {guild: figures_after(store, guild) for guild in guilds} == before
    assert sum(figures[6] for figures in before.values()) == 3000
