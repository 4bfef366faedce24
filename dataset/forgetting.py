"""Forgetting: a person's votes and the images they posted, the images of a deleted message, and
every copy of a forgotten image that a training's work folder still holds.

- **A person** (`!forget`): their votes go; so do the images they posted (the author of the
  message that carried them, `image_refs.poster_id`) in each server concerned, with every vote
  cast on them there, whoever labelled them: a picture is its poster's to take back. An image
  they gave but did not post stays where others labelled it (`queries.release_refs`).
- **A deleted message**: the images it carried leave that server, with their votes there,
  unless a moderator of that server labelled them. Deleting a message is a weaker sign than
  `!forget` (a moderator tidying a channel deletes messages too), and a moderator's label is the
  server's own decision about the image; the poster can still take it back with `!forget`.
- **Files**: an image no server refers to any more loses its row, then (after the commit) its
  file and its copies in `DATA_DIR/trainings/<id>/{data,holdout}/<class>/`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dataset.queries import delete_orphans, refresh_server_images, release_refs
from dataset.schema import Image, ImageRef, Vote

log = logging.getLogger(__name__)

WORK_IMAGE_FOLDERS = ("data", "holdout")  # training.protocol.WorkFolder's image folders


@dataclass(frozen=True)
class Deleted:
    """What one forgetting transaction deleted; `orphans` are (sha256, format) whose files go."""

    votes: int  # the person's own votes
    posts: int  # (server, image) references of images they posted, or a deleted message carried
    others_votes: int  # other people's votes on those images, in those servers
    orphans: list[tuple[str, str]]


def forget_person(session: Session, user_id: int, guild_id: int | None) -> Deleted:
    """Delete `user_id`'s votes and the images they posted, in the server `guild_id` (None: in
    every server), then the images nobody refers to any more."""
    mine = Vote.user_id == user_id
    posted = ImageRef.poster_id == user_id
    gave = ImageRef.posted_by == user_id
    if guild_id is not None:
        mine &= Vote.guild_id == guild_id
        posted &= ImageRef.guild_id == guild_id
        gave &= ImageRef.guild_id == guild_id
    refs = select(ImageRef.guild_id, ImageRef.image_sha256)
    voted = set(session.execute(select(Vote.guild_id, Vote.image_sha256).where(mine)))
    votes = session.execute(delete(Vote).where(mine)).rowcount
    posts = set(session.execute(refs.where(posted)))
    given = set(session.execute(refs.where(gave)))
    others = _drop_refs(session, posts)
    release_refs(session, (voted | given) - posts, user_id)
    session.flush()
    touched = {sha256 for _, sha256 in voted | given | posts}
    return Deleted(votes, len(posts), others, delete_orphans(session, touched))


def forget_messages(session: Session, guild: int, message_ids: Iterable[int]) -> Deleted:
    """The images carried by these (deleted) messages leave the server `guild` with their votes
    there, unless one of its moderators labelled them."""
    ids = sorted(set(message_ids))
    refs = set(
        session.execute(
            select(ImageRef.guild_id, ImageRef.image_sha256).where(
                ImageRef.guild_id == guild, ImageRef.message_id.in_(ids)
            )
        )
    )
    moderated = set(
        session.execute(
            select(Vote.guild_id, Vote.image_sha256).where(
                Vote.guild_id == guild,
                Vote.moderator.is_(True),
                Vote.image_sha256.in_([sha256 for _, sha256 in refs]),
            )
        )
    )
    gone = refs - moderated
    others = _drop_refs(session, gone)
    session.flush()
    return Deleted(0, len(gone), others, delete_orphans(session, {sha for _, sha in gone}))


def carried_any(session: Session, guild: int, message_ids: list[int]) -> bool:
    """Whether any of these messages carried an image the server `guild` keeps."""
    held = ImageRef.guild_id == guild, ImageRef.message_id.in_(message_ids)
    return (
        bool(message_ids)
        and session.scalar(select(ImageRef.guild_id).where(*held).limit(1)) is not None
    )


def _drop_refs(session: Session, pairs: set[tuple[int, str]]) -> int:
    """Delete these (server, image) references and the votes cast on them there; the votes'
    count. The image's first-seen place is cleared when it was that server."""
    votes = 0
    for guild, sha256 in pairs:
        votes += session.execute(
            delete(Vote).where(Vote.image_sha256 == sha256, Vote.guild_id == guild)
        ).rowcount
        session.execute(
            delete(ImageRef).where(ImageRef.image_sha256 == sha256, ImageRef.guild_id == guild)
        )
        image = session.get(Image, sha256)
        if image is not None and image.guild_id == guild:
            image.guild_id = image.channel_id = image.message_id = None
            image.filename = ""
    session.flush()
    refresh_server_images(session, pairs)  # `!dataset` and the quotas count these rows
    return votes


def remove_copies(trainings: Path, names: set[str]) -> int:
    """Delete the files called `names` from every work folder under `trainings` (the exported
    copies of images that were just forgotten); how many there were."""
    removed = 0
    if not names or not trainings.is_dir():
        return 0
    for run in trainings.iterdir():
        for folder in WORK_IMAGE_FOLDERS:
            classes = run / folder
            if not classes.is_dir():
                continue
            for label in classes.iterdir():
                for name in names:
                    try:
                        (label / name).unlink()
                    except FileNotFoundError:
                        continue
                    except NotADirectoryError:
                        break
                    removed += 1
    return removed


def remove_work_folder(run: Path, *, whole: bool) -> bool:
    """Delete a work folder that no running or queued training uses: whole, or only its images
    (its log, result and plots stay); True if there was something to delete."""
    targets = [run] if whole else [run / folder for folder in WORK_IMAGE_FOLDERS]
    found = [path for path in targets if path.exists()]
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return bool(found)
