"""A server's quota: the images it holds (its references) and their bytes, checked in the
transaction that adds a reference, on SQLite and on PostgreSQL; two writers at the edge."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event, select

from dataset import DatasetStore, Quota, QuotaReached, Usage
from dataset.records import megabytes
from dataset.schema import Image

MakeImage = Callable[..., bytes]

ONE, TWO = 2**60 + 1, 2**60 + 2
ROOMY = 1 << 40  # bytes: only the count bounds
ROUNDS = 24
BARRIER_TIMEOUT = 60.0


def stored(store: DatasetStore, data: bytes) -> bool:
    """Whether `data` is in the store (its row and its file go together)."""
    sha256 = hashlib.sha256(data).hexdigest()
    with store.engine.connect() as connection:
        row = connection.execute(select(Image.format).where(Image.sha256 == sha256)).first()
    files = list((store.data_dir / "images" / sha256[:2]).glob(f"{sha256}.*"))
    assert (row is None) == (not files), "a row and its file go together"
    return row is not None


def test_the_count_bounds_a_server(store: DatasetStore, make_image: MakeImage) -> None:
    quota = Quota(images=2, bytes=ROOMY)
    images = [make_image(seed) for seed in range(3)]
    for data in images[:2]:
        store.add_image(data, guild_id=ONE, quota=quota)
    with pytest.raises(QuotaReached) as refused:
        store.add_image_and_vote(
            images[2], guild_id=ONE, user_id=5, label="jedi", source="teach", quota=quota
        )
    message = str(refused.value)
    assert message.startswith("This server keeps at most 2 images and 1,048,576 MB of them; ")
    assert f"it holds 2 ({megabytes(sum(len(d) for d in images[:2]))}): no room" in message
    assert "\n" not in message
    assert not stored(store, images[2]) and store.summary(ONE).votes == 0
    assert store.usage(ONE) == Usage(images=2, bytes=sum(len(d) for d in images[:2]))


def test_the_bytes_bound_a_server(store: DatasetStore, make_image: MakeImage) -> None:
    small, large = make_image(1), make_image(2, size=(120, 90))
    quota = Quota(images=100, bytes=len(small) + len(large) - 1)
    store.add_image(small, guild_id=ONE, quota=quota)
    with pytest.raises(QuotaReached, match=r"no room for this one \(\d+ kB\)"):
        store.add_image(large, guild_id=ONE, quota=quota)
    assert not stored(store, large)
    assert store.usage(ONE) == Usage(1, len(small))
    # Exactly full is allowed.
    store.add_image(large, guild_id=ONE, quota=Quota(100, len(small) + len(large)))
    assert store.usage(ONE) == Usage(2, len(small) + len(large))


def test_a_vote_on_an_image_the_server_holds_is_never_refused(
    store: DatasetStore, make_image: MakeImage
) -> None:
    data = make_image(7)
    store.add_image_and_vote(data, guild_id=ONE, user_id=1, label="jedi", source="teach")
    full = Quota(images=1, bytes=len(data))
    for user, label in ((2, "sith"), (1, "sith"), (3, "jedi")):
        store.add_image_and_vote(
            data, guild_id=ONE, user_id=user, label=label, source="button", quota=full
        )
    # Even past the quota (lowered by the operator since), what it holds still takes votes.
    store.add_image_and_vote(
        data, guild_id=ONE, user_id=4, label="jedi", source="button", quota=Quota(1, 1)
    )
    assert store.summary(ONE).votes == 4
    with pytest.raises(QuotaReached):
        store.add_image(make_image(8), guild_id=ONE, quota=full)


def test_two_servers_quotas_are_apart(store: DatasetStore, make_image: MakeImage) -> None:
    shared, own = make_image(10), make_image(11)
    quota = Quota(images=1, bytes=ROOMY)
    store.add_image(shared, guild_id=ONE, quota=quota)
    with pytest.raises(QuotaReached):
        store.add_image(own, guild_id=ONE, quota=quota)
    # The image ONE holds counts for TWO as well once TWO holds it; ONE being full stops nothing.
    store.add_image_and_vote(
        shared, guild_id=TWO, user_id=3, label="sith", source="teach", quota=quota
    )
    assert store.usage(ONE) == store.usage(TWO) == Usage(1, len(shared))
    with pytest.raises(QuotaReached):
        store.add_image(own, guild_id=TWO, quota=quota)
    store.add_image(own, guild_id=TWO, quota=Quota(2, ROOMY))
    assert store.usage(TWO).images == 2 and store.usage(ONE).images == 1


def test_forgetting_frees_room(store: DatasetStore, make_image: MakeImage) -> None:
    quota = Quota(images=1, bytes=ROOMY)
    store.add_image_and_vote(
        make_image(20), guild_id=ONE, user_id=9, label="jedi", source="teach", quota=quota
    )
    with pytest.raises(QuotaReached):
        store.add_image(make_image(21), guild_id=ONE, quota=quota)
    store.forget_user(9, ONE)
    assert store.usage(ONE) == Usage(0, 0)
    store.add_image(make_image(21), guild_id=ONE, quota=quota)


def test_two_writers_at_the_edge_never_pass_the_quota(
    data_dir: Path, database_url: str, make_image: MakeImage
) -> None:
    """Each round leaves room for exactly one more image (by count, or by bytes every other
    round) and two stores, each with its own engine (as two processes), add a different new
    image at the same moment: exactly one is kept."""
    stores = [DatasetStore.open(data_dir, database_url) for _ in range(2)]
    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT)
    kept: list[list[int]] = [[], []]
    errors: list[BaseException] = []
    images = [[make_image(1000 * (w + 1) + r) for r in range(ROUNDS)] for w in range(2)]

    def quota_for(round_: int) -> Quota:
        held = stores[0].usage(ONE)
        if round_ % 2 == 0:
            return Quota(images=held.images + 1, bytes=ROOMY)
        biggest = max(len(images[0][round_]), len(images[1][round_]))
        return Quota(images=10_000, bytes=held.bytes + biggest)

    quotas: list[Quota] = []

    def writer(w: int) -> None:
        try:
            for round_ in range(ROUNDS):
                if w == 0:
                    quotas.append(quota_for(round_))
                barrier.wait()  # the quota of this round is known
                barrier.wait()  # both add at once
                try:
                    stores[w].add_image_and_vote(
                        images[w][round_],
                        guild_id=ONE,
                        user_id=w + 1,
                        label="jedi",
                        source="button",
                        quota=quotas[round_],
                    )
                    kept[w].append(round_)
                except QuotaReached:
                    pass
                barrier.wait()  # the round is over
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert sorted(kept[0] + kept[1]) == list(range(ROUNDS)), "one image kept each round"
        assert stores[0].usage(ONE).images == ROUNDS
        for round_ in range(ROUNDS):
            winner = 0 if round_ in kept[0] else 1
            assert not stored(stores[0], images[1 - winner][round_])
    finally:
        for opened in stores:
            opened.close()


def test_counting_reads_only_the_servers_references(tmp_path: Path, make_image: MakeImage) -> None:
    """The usage query searches an index (SQLite's plan): no scan of a table. (It reads the
    server's `server_images` rows, kept with its references, since 0005.)"""
    with DatasetStore.open(tmp_path / "data") as store:
        for seed in range(3):
            store.add_image_and_vote(
                make_image(seed), guild_id=ONE, user_id=1, label="sith", source="teach"
            )
        statements: list[tuple[str, object]] = []

        def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
            statements.append((statement, parameters))

        event.listen(store.engine, "before_cursor_execute", record)
        try:
            assert store.usage(ONE).images == 3
        finally:
            event.remove(store.engine, "before_cursor_execute", record)
        statement, parameters = next(s for s in statements if "server_images" in s[0])
        with store.engine.connect() as connection:
            plan = [
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
    assert plan and all(step.startswith("SEARCH") for step in plan), plan
    assert not any("votes" in step for step in plan), plan


def test_no_quota_no_check(store: DatasetStore, make_image: MakeImage) -> None:
    """Imports (no quota given) are not bounded; the file of a refused image is not left."""
    for seed in range(3):
        store.add_image(make_image(seed), guild_id=ONE)
    assert store.usage(ONE).images == 3
    data = make_image(99)
    with pytest.raises(QuotaReached):
        store.add_image(data, guild_id=ONE, quota=Quota(3, ROOMY))
    assert not stored(store, data)
