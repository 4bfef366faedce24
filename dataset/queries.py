"""The store's queries that more than one of its methods share, and `server_images`: what each
server has of each image (held, its label, its split), kept with the votes so that `!dataset`
reads one row per image instead of every vote (`summarize`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dataset.files import image_path
from dataset.labels import Tally, is_holdout, tally
from dataset.records import NO_GUILD, LabelledImage, Summary
from dataset.schema import Image, ImageRef, ServerImage, Training, Vote

CONFLICTS_LISTED = 25  # the conflicts a summary lists, most voted first (it counts them all)


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
    vouching: dict[str, tuple[int, bool]] = {}  # the most any one server vouches for it
    for (sha256, _), rows in votes_by_image(session, guild_ids).items():
        result = tally(((label, moderator) for label, moderator, _ in rows), class_names)
        labels[sha256].add(result.label if not result.conflict else "")
        vouching[sha256] = max(vouching.get(sha256, (0, False)), label_voters(result))
    found = []
    for sha256, labelled in labels.items():
        labelled.discard(None)
        held = is_holdout(sha256)
        if len(labelled) != 1 or "" in labelled or (holdout is not None and held != holdout):
            continue
        label = next(iter(labelled))
        assert label is not None
        path = image_path(images, sha256, formats[sha256])
        found.append(LabelledImage(sha256, label, path, held, *vouching[sha256]))
    found.sort(key=lambda image: (image.label, image.sha256))
    return found


def label_voters(result: Tally) -> tuple[int, bool]:
    """The voters who give an image its label in one server (one vote per member there, so
    they are distinct members), and whether a moderator is one of them; (0, False): no label."""
    if result.label is None:
        return 0, False
    return result.votes.get(result.label, 0), result.moderator_votes.get(result.label, 0) > 0


def vouched(voters: int, moderated: bool, min_voters: int) -> bool:
    """Whether a held-out image judges a server's models: its label has the votes of at least
    `min_voters` members there, or a moderator's. One member alone cannot stuff the holdout."""
    return moderated or voters >= min_voters


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
    known gave) goes if nobody there voted on it, else stays with no poster; then their
    `server_images` rows follow."""
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
    session.flush()
    refresh_server_images(session, pairs)


def refresh_server_images(session: Session, pairs: Iterable[tuple[int, str]]) -> None:
    """Bring the `server_images` row of each (server, image) up to date with its votes and its
    reference there: made, changed, or gone when the server neither holds nor voted on it.

    The row is taken FOR UPDATE before the votes are read (PostgreSQL), so two votes on one
    image committed at once are counted one after the other, the second seeing the first."""
    for guild, sha256 in sorted(set(pairs)):
        row = session.get(ServerImage, (guild, sha256), with_for_update=True)
        votes = session.execute(
            select(Vote.label, Vote.moderator, Vote.created_at).where(
                Vote.image_sha256 == sha256, Vote.guild_id == guild
            )
        ).all()
        held = session.get(ImageRef, (guild, sha256)) is not None
        if not votes and not held:
            if row is not None:
                session.delete(row)
            continue
        result = tally((label, moderator) for label, moderator, _ in votes)
        voters, moderated = label_voters(result)
        values = {
            "held": held,
            "size": session.scalar(select(Image.size).where(Image.sha256 == sha256)) or 0,
            "holdout": is_holdout(sha256),
            "label": result.label,
            "conflict": result.conflict,
            "votes": {label: n for label, n in result.votes.items() if n} or None,
            "vote_count": len(votes),
            "first_vote_at": min((created for *_, created in votes), default=None),
            "label_voters": voters,
            "moderated": moderated,
        }
        if row is None:
            session.add(ServerImage(guild_id=guild, image_sha256=sha256, **values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
    session.flush()


def summarize(session: Session, guild: int, class_names: Sequence[str], top: int) -> Summary:
    """The server's data in figures, from its `server_images` rows (read through indexes
    that hold what each query needs) and its top contributors (the index of its votes)."""
    mine = ServerImage.guild_id == guild
    counts = {name: {"train": 0, "holdout": 0} for name in class_names}
    images = votes = 0
    for label, holdout, n, cast in session.execute(
        select(
            ServerImage.label,
            ServerImage.holdout,
            func.count(),
            func.coalesce(func.sum(ServerImage.vote_count), 0),
        )
        .where(mine)
        .group_by(ServerImage.label, ServerImage.holdout)
    ):
        images, votes = images + int(n), votes + int(cast)
        if label is not None:
            counts.setdefault(label, {"train": 0, "holdout": 0})[split_name(holdout)] += int(n)
    last_published = session.scalar(
        select(func.max(Training.started_at)).where(
            Training.status == "published", Training.scope.in_((guild, NO_GUILD))
        )
    )
    since = select(func.count()).where(mine, ServerImage.label.is_not(None))
    if last_published is not None:  # (guild_id, first_vote_at, label): one index range
        since = since.where(ServerImage.first_vote_at > last_published)
    conflicted = (mine, ServerImage.conflict.is_(True))
    listed = session.scalars(  # from the index alone; then the listed rows' votes
        select(ServerImage.image_sha256)
        .where(*conflicted)
        .order_by(ServerImage.vote_count.desc(), ServerImage.image_sha256)
        .limit(CONFLICTS_LISTED)
    ).all()
    votes_of = dict(
        session.execute(
            select(ServerImage.image_sha256, ServerImage.votes).where(
                mine, ServerImage.image_sha256.in_(listed)
            )
        ).all()
    )
    zeros = dict.fromkeys(class_names, 0)
    conflicts = [(sha256, {**zeros, **(votes_of[sha256] or {})}) for sha256 in listed]
    contributors = session.execute(
        select(Vote.user_id, func.count().label("n"))
        .where(Vote.guild_id == guild)
        .group_by(Vote.user_id)
        .order_by(func.count().desc(), Vote.user_id)
        .limit(top)
    ).all()
    holdout_voters: dict[int, int] = {}
    moderated = 0
    for voters, by_moderator, n in session.execute(
        select(ServerImage.label_voters, ServerImage.moderated, func.count())
        .where(mine, ServerImage.holdout.is_(True), ServerImage.label.in_(class_names))
        .group_by(ServerImage.label_voters, ServerImage.moderated)
    ):
        if by_moderator:
            moderated += int(n)
        else:
            holdout_voters[int(voters)] = holdout_voters.get(int(voters), 0) + int(n)
    labelled = sum(sum(splits.values()) for splits in counts.values())
    return Summary(
        counts=counts,
        since_last_training=session.scalar(since) or 0,
        conflicts=conflicts,
        unlabelled=images - labelled,
        contributors=[(int(user), int(n)) for user, n in contributors],
        guild_images=images,
        images=images,
        votes=votes,
        conflict_count=session.scalar(select(func.count()).where(*conflicted)) or 0,
        holdout_voters=holdout_voters,
        holdout_moderated=moderated,
    )


def split_name(holdout: bool) -> str:
    return "holdout" if holdout else "train"
