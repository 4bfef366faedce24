"""A server's share of the stored images: what it holds (its `image_refs`) against its quota,
and what a member and a server added today (UTC) against the daily quota.

The count and the bytes are one aggregate over the server's `server_images` rows it holds (kept
with its references, `dataset.queries`), read from one index (guild_id, held, size): the cost
grows with what that server holds, never with the whole store or its votes. A day's
additions are the references made since midnight UTC, found through the indexes on
(guild_id, created_at) and (posted_by, created_at) (migration 0005). The check runs in the
transaction that adds the reference, after taking the server's `guild_settings` row FOR UPDATE
(PostgreSQL; SQLite's writers already queue on its write lock), so two processes adding at once
are counted one after the other and cannot both slip past the quota. (A member adding in two
servers at the same moment on PostgreSQL is counted without such a lock, and may pass the daily
quota by those few images.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from dataset.records import DailyQuota, DatasetError, Quota, QuotaReached, Usage, megabytes
from dataset.schema import GuildSetting, Image, ImageRef, ServerImage


class DailyQuotaReached(DatasetError):
    """A new image would take its member or its server past the day's quota: nothing was kept."""

    def __init__(self, who: str, limit: tuple[int, int], added: Usage, now: datetime) -> None:
        images, size = limit
        said = (
            "Your daily quota is reached: you added"
            if who == "member"
            else "This server's daily quota is reached: it added"
        )
        super().__init__(
            f"{said} {_images(added.images)} ({megabytes(added.bytes)}) today, at most "
            f"{images:,} images and {megabytes(size)} a day. It resets at 00:00 UTC "
            f"({until_midnight(now)})."
        )
        self.who, self.limit, self.added = who, limit, added


def _images(count: int) -> str:
    return f"{count:,} image" + ("" if count == 1 else "s")


def usage(session: Session, guild: int) -> Usage:
    """The images the server `guild` holds and their bytes (its `server_images` it holds)."""
    images, size = session.execute(
        select(func.count(), func.coalesce(func.sum(ServerImage.size), 0)).where(
            ServerImage.guild_id == guild, ServerImage.held.is_(True)
        )
    ).one()
    return Usage(images=int(images), bytes=int(size))


def added_today(session: Session, where: ColumnElement[bool], now: datetime) -> Usage:
    """The references made since midnight UTC that `where` selects, and their images' bytes."""
    return _refs_usage(session, where & (ImageRef.created_at >= midnight(now)))


def _refs_usage(session: Session, where: ColumnElement[bool]) -> Usage:
    images, size = session.execute(
        select(func.count(), func.coalesce(func.sum(Image.size), 0))
        .select_from(ImageRef)
        .join(Image, Image.sha256 == ImageRef.image_sha256)
        .where(where)
    ).one()
    return Usage(images=int(images), bytes=int(size))


def check_room(
    session: Session,
    guild: int,
    sha256: str,
    size: int,
    quota: Quota,
    poster: int | None = None,
) -> None:
    """Before the server `guild` holds the image `sha256` (`size` bytes, posted by `poster`):
    `QuotaReached` if it would go past `quota`, `DailyQuotaReached` past its daily part. An
    image it already holds always passes."""
    if session.get(ImageRef, (guild, sha256)) is not None:
        return
    lock_guild(session, guild)
    if session.get(ImageRef, (guild, sha256)) is not None:  # added while we waited
        return
    held = usage(session, guild)
    if held.images + 1 > quota.images or held.bytes + size > quota.bytes:
        raise QuotaReached(quota, held, size)
    if quota.daily is not None:
        check_today(session, guild, poster, size, quota.daily, utc_now())


def check_today(
    session: Session, guild: int, poster: int | None, size: int, daily: DailyQuota, now: datetime
) -> None:
    """`DailyQuotaReached` if one more image of `size` bytes would take the member `poster`
    (in every server) or the server `guild` past `daily` today."""
    if poster is not None:
        mine = added_today(session, ImageRef.posted_by == poster, now)
        limit = (daily.member_images, daily.member_bytes)
        if mine.images + 1 > limit[0] or mine.bytes + size > limit[1]:
            raise DailyQuotaReached("member", limit, mine, now)
    ours = added_today(session, ImageRef.guild_id == guild, now)
    limit = (daily.server_images, daily.server_bytes)
    if ours.images + 1 > limit[0] or ours.bytes + size > limit[1]:
        raise DailyQuotaReached("server", limit, ours, now)


def utc_now() -> datetime:
    """The moment the daily quota is counted at (one clock, which tests may hold still)."""
    return datetime.now(UTC)


def midnight(now: datetime) -> datetime:
    """The start of `now`'s day in UTC: the daily quota counts from there."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def until_midnight(now: datetime) -> str:
    """How long until the next midnight UTC, for people: "in 5 h 12 min", "in 3 min"."""
    left = midnight(now) + timedelta(days=1) - now.astimezone(UTC)
    minutes = max(1, int(left.total_seconds() + 59) // 60)
    hours, minutes = divmod(minutes, 60)
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


def lock_guild(session: Session, guild: int) -> None:
    """Hold the server's settings row until the transaction ends (made, with the defaults, if
    it has none: a concurrent maker loses on the key and is run again by the store)."""
    found = session.execute(
        select(GuildSetting.guild_id).where(GuildSetting.guild_id == guild).with_for_update()
    ).scalar_one_or_none()
    if found is None:
        session.add(
            GuildSetting(
                guild_id=guild, collecting=False, sharing=False, changed_at=datetime.now(UTC)
            )
        )
        session.flush()
