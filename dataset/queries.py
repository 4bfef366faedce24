"""The store's queries that more than one of its methods share."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dataset.files import image_path
from dataset.labels import is_holdout, tally
from dataset.records import LabelledImage
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


def labelled_in(
    session: Session,
    guild_ids: list[int],
    holdout: bool | None,
    class_names: Iterable[str],
    images: Path,
) -> list[LabelledImage]:
    """The images labelled in these servers (one split unless `holdout` is None), by label then
    hash; an image they label differently is left out. `images`: the store's image folder."""
    formats = dict(session.execute(select(Image.sha256, Image.format)).all())
    labels: dict[str, set[str | None]] = defaultdict(set)
    for (sha256, _), rows in votes_by_image(session, guild_ids).items():
        result = tally(((label, moderator) for label, moderator, _ in rows), class_names)
        labels[sha256].add(result.label if not result.conflict else "")
    found = []
    for sha256, labelled in labels.items():
        labelled.discard(None)
        held = is_holdout(sha256)
        if len(labelled) != 1 or "" in labelled or (holdout is not None and held != holdout):
            continue
        label = next(iter(labelled))
        assert label is not None
        path = image_path(images, sha256, formats[sha256])
        found.append(LabelledImage(sha256, label, path, held))
    found.sort(key=lambda image: (image.label, image.sha256))
    return found


def message_links(session: Session, guild: int, limit: int) -> list[tuple[str, int, int]]:
    """The server's `limit` most recently kept images that came in a message, newest first:
    (sha256, channel id, message id), for links to those messages."""
    rows = session.execute(
        select(ImageRef.image_sha256, ImageRef.channel_id, ImageRef.message_id)
        .where(
            ImageRef.guild_id == guild,
            ImageRef.channel_id.is_not(None),
            ImageRef.message_id.is_not(None),
        )
        .order_by(ImageRef.created_at.desc(), ImageRef.image_sha256)
        .limit(limit)
    )
    return [(sha256, int(channel), int(message)) for sha256, channel, message in rows]


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
