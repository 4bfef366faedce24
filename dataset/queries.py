"""The store's queries that more than one of its methods share."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dataset.schema import Image, ImageRef, Vote


def votes_by_image(
    session: Session, guild_ids: list[int]
) -> dict[tuple[str, int], list[tuple[str, bool, datetime]]]:
    """The votes cast in these servers, as (label, moderator, created_at) per (image, server)."""
    votes: dict[tuple[str, int], list[tuple[str, bool, datetime]]] = defaultdict(list)
    for sha256, guild, label, moderator, created in session.execute(
        select(Vote.image_sha256, Vote.guild_id, Vote.label, Vote.moderator, Vote.created_at).where(
            Vote.guild_id.in_(guild_ids)
        )
    ):
        votes[sha256, guild].append((label, moderator, created))
    return votes


def delete_orphans(session: Session, shas: set[str]) -> list[tuple[str, str]]:
    """Delete the rows of the images in `shas` that no reference or vote holds; their
    (sha256, format), for their files to go after the commit."""
    orphans: list[tuple[str, str]] = []
    for chunk in _chunks(sorted(shas), 500):
        orphans += [
            (sha256, image_format)
            for sha256, image_format in session.execute(
                select(Image.sha256, Image.format).where(
                    Image.sha256.in_(chunk),
                    Image.sha256.not_in(select(Vote.image_sha256)),
                    Image.sha256.not_in(select(ImageRef.image_sha256)),
                )
            )
        ]
    for chunk in _chunks([sha256 for sha256, _ in orphans], 500):
        session.execute(delete(Image).where(Image.sha256.in_(chunk)))
    return orphans


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def release_refs(session: Session, pairs: set[tuple[int, str]], user_id: int) -> None:
    """After `user_id`'s votes went: each (server, image) reference they gave (or nobody
    known gave) goes if nobody there voted on it, else stays with no poster."""
    for guild, sha256 in pairs:
        ref = session.get(ImageRef, (guild, sha256))
        if ref is None or ref.posted_by not in (None, user_id):
            continue  # someone else gave it there: it stays theirs
        still_voted = session.scalar(
            select(func.count())
            .select_from(Vote)
            .where(Vote.image_sha256 == sha256, Vote.guild_id == guild)
        )
        if still_voted:  # others there labelled it: it stays, no longer theirs
            ref.posted_by = None
        else:
            session.delete(ref)
