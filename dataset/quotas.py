"""A server's share of the stored images: what it holds (its `image_refs`) against its quota.

The count and the bytes are one aggregate over the server's references, found through their
primary key (guild_id, image_sha256), each joined to its image by the image's primary key: the
cost grows with what that server holds, never with the whole store or its votes. The check runs
in the transaction that adds the reference, after taking the server's `guild_settings` row FOR
UPDATE (PostgreSQL; SQLite's writers already queue on its write lock), so two processes adding
at once are counted one after the other and cannot both slip past the quota.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dataset.records import Quota, QuotaReached, Usage
from dataset.schema import GuildSetting, Image, ImageRef


def usage(session: Session, guild: int) -> Usage:
    """The images the server `guild` holds and their bytes."""
    images, size = session.execute(
        select(func.count(), func.coalesce(func.sum(Image.size), 0))
        .select_from(ImageRef)
        .join(Image, Image.sha256 == ImageRef.image_sha256)
        .where(ImageRef.guild_id == guild)
    ).one()
    return Usage(images=int(images), bytes=int(size))


def check_room(session: Session, guild: int, sha256: str, size: int, quota: Quota) -> None:
    """Before the server `guild` holds the image `sha256` (`size` bytes): `QuotaReached` if it
    would go past `quota`. An image it already holds always passes."""
    if session.get(ImageRef, (guild, sha256)) is not None:
        return
    lock_guild(session, guild)
    if session.get(ImageRef, (guild, sha256)) is not None:  # added while we waited
        return
    held = usage(session, guild)
    if held.images + 1 > quota.images or held.bytes + size > quota.bytes:
        raise QuotaReached(quota, held, size)


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
