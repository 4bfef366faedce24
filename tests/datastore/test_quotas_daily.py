"""The daily quota: what one member (in every server) and one server may add since midnight UTC,
images and bytes, checked in the transaction that adds a reference, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from dataset import DailyQuota, DailyQuotaReached, DatasetStore, Quota, Usage, quotas
from dataset.quotas import midnight, until_midnight
from dataset.records import megabytes
from dataset.schema import ImageRef

MakeImage = Callable[..., bytes]

ONE, TWO = 2**60 + 1, 2**60 + 2
ROOMY = 1 << 40
ALICE, BOB, CAROL, DAN = 5, 6, 7, 8


def daily(
    member_images: int = 1000,
    member_bytes: int = ROOMY,
    server_images: int = 1000,
    server_bytes: int = ROOMY,
) -> Quota:
    return Quota(
        10_000, ROOMY, DailyQuota(member_images, member_bytes, server_images, server_bytes)
    )


@pytest.fixture(autouse=True)
def today(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The quota's clock held at the test's start: a test running over midnight UTC still
    counts what it added as today's."""
    now = datetime.now(UTC)
    monkeypatch.setattr(quotas, "utc_now", lambda: now)
    return now


def teach(store: DatasetStore, data: bytes, guild: int, user: int, quota: Quota) -> None:
    store.add_image_and_vote(
        data, guild_id=guild, user_id=user, label="jedi", source="teach", quota=quota
    )


def held(store: DatasetStore, data: bytes) -> bool:
    """Whether the image's file is kept."""
    sha256 = hashlib.sha256(data).hexdigest()
    return bool(list((store.data_dir / "images" / sha256[:2]).glob(f"{sha256}.*")))


def test_a_member_may_add_so_many_images_a_day_in_every_server(
    store: DatasetStore, make_image: MakeImage
) -> None:
    quota = daily(member_images=2)
    images = [make_image(seed) for seed in range(4)]
    teach(store, images[0], ONE, ALICE, quota)
    teach(store, images[1], TWO, ALICE, quota)
    with pytest.raises(DailyQuotaReached) as refused:
        teach(store, images[2], ONE, ALICE, quota)
    message = str(refused.value)
    added = megabytes(len(images[0]) + len(images[1]))
    assert message.startswith(
        f"Your daily quota is reached: you added 2 images ({added}) today, at most 2 images and "
    )
    assert " a day. It resets at 00:00 UTC (in " in message and "\n" not in message
    assert not held(store, images[2]) and store.summary(ONE).votes == 1
    # Another member is not held up, and a vote on an image the server holds always counts.
    teach(store, images[2], ONE, BOB, quota)
    teach(store, images[2], ONE, ALICE, quota)
    assert store.summary(ONE).votes == 3


def test_a_server_may_add_so_many_images_and_bytes_a_day(
    store: DatasetStore, make_image: MakeImage
) -> None:
    images = [make_image(seed) for seed in range(10, 15)]
    quota = daily(server_images=3)
    for user, data in zip((ALICE, BOB, CAROL), images, strict=False):
        teach(store, data, ONE, user, quota)
    with pytest.raises(DailyQuotaReached, match=r"^This server's daily quota is reached: it "):
        teach(store, images[3], ONE, DAN, quota)
    teach(store, images[3], TWO, DAN, quota)  # another server is not held up
    by_bytes = daily(member_bytes=len(images[4]) - 1)
    with pytest.raises(DailyQuotaReached, match="you added 0 images"):
        teach(store, images[4], TWO, 9, by_bytes)
    assert not held(store, images[4])
    assert store.usage(ONE) == Usage(3, sum(len(d) for d in images[:3]))


def test_what_was_added_before_midnight_utc_does_not_count(
    store: DatasetStore, make_image: MakeImage, today: datetime
) -> None:
    quota = daily(member_images=1, server_images=1)
    first, second = make_image(20), make_image(21)
    teach(store, first, ONE, ALICE, quota)
    with pytest.raises(DailyQuotaReached):
        teach(store, second, ONE, ALICE, quota)
    yesterday = midnight(today) - timedelta(seconds=1)
    with store.engine.begin() as connection:
        connection.execute(update(ImageRef).values(created_at=yesterday))
    teach(store, second, ONE, ALICE, quota)
    assert store.usage(ONE).images == 2


def test_the_reply_says_when_the_day_starts_again() -> None:
    assert until_midnight(datetime(2026, 12, 5, 22, 47, tzinfo=UTC)) == "in 1 h 13 min"
    assert until_midnight(datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC)) == "in 1 min"
    assert until_midnight(datetime(2026, 12, 5, 0, 0, tzinfo=UTC)) == "in 24 h 0 min"
    assert midnight(datetime(2026, 12, 5, 9, 30, tzinfo=UTC)) == datetime(2026, 12, 5, tzinfo=UTC)
