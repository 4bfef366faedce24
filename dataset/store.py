"""The labelled-image store: what the bot learns from, kept with consent.

One `DatasetStore` per process wraps one Engine (thread-safe: the bot calls it through
`asyncio.to_thread`) and opens a short session per call, so nothing it returns is tied to a
session: every method returns frozen records (`dataset.records`). Each write is one whole
transaction. On SQLite it begins with the write lock taken (`database.writer`), so concurrent
writers queue; on PostgreSQL writers from several processes (the bot's shards) run at once, and
one that loses a race on a unique key (two inserts of the same image or of the same person's
vote) or is chosen as a deadlock's victim is simply run again, on what the winner committed.

- **Servers** keep their data apart: an image is held by the servers that posted it
  (`image_refs`; 0 is "no server", as for imports) and labelled in each by that server's votes
  only. The operator's default model learns from the servers that share (`labelled_shared`).
- **Images** are files named by their SHA-256 (`dataset.files`) plus one row each; the file is
  written before the row, so a row never names a missing file. The same bytes are stored once,
  and go when no server refers to them any more (no reference, no vote). Given a `Quota`, a new
  reference that would take its server past it is refused (`QuotaReached`; `dataset.quotas`).
- **Votes**: one per (image, server, person); a second vote replaces the first. Labels and the
  holdout split are computed from the votes (`dataset.labels`); each server's result is kept in
  `server_images`, rewritten in the transaction that changes its votes or reference
  (`dataset.queries.refresh_server_images`), so `summary` and the quota read rows, not votes.
- **Consent**: off in every guild until someone turns it on (`set_collecting`); the bot asks
  `collecting(guild_id)` before it keeps an image or a vote (the store itself records what it
  is given: an import from the command line belongs to no guild).
- **Forgetting** a person deletes their votes and the images they posted, in one server (or
  all), and a deleted message takes its images out of its server (`dataset.forgetting`); an
  image no server refers to any more goes, file and work-folder copies too.
- **Trainings**: the trainings table and the training locks (one per scope) are
  `store.trainings` (`dataset.trainings`), on the same engine.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dataset import guilds
from dataset import labels as _labels
from dataset.database import display_url, make_engine, sqlite_url, upgrade, writer
from dataset.files import IMAGES_FOLDER, export_files, image_path, inspect, remove, write_once
from dataset.forgetting import (
    Deleted,
    carried_any,
    forget_messages,
    forget_person,
    remove_copies,
)
from dataset.importing import import_folder
from dataset.labels import CLASS_NAMES, Tally, check_class_names, is_holdout, tally
from dataset.queries import (
    labelled_in,
    message_links,
    refresh_server_images,
    summarize,
)
from dataset.quotas import check_room, usage
from dataset.records import (
    NO_GUILD,
    VOTE_SOURCES,
    DatasetError,
    Forgotten,
    GuildSettings,
    ImageLabel,
    ImageRecord,
    ImportReport,
    LabelledImage,
    Quota,
    Summary,
    Usage,
    UserSummary,
    VoteOutcome,
)
from dataset.schema import GuildSetting, Image, ImageRef, Vote
from dataset.trainings import TRAININGS_FOLDER, Trainings

log = logging.getLogger(__name__)

TOP_CONTRIBUTORS = 5
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ATTEMPTS = 3  # a write that lost a race on a unique key is tried again this often
T = TypeVar("T")


class DatasetStore:
    """The dataset under one DATA_DIR; see the module docstring. Make one with `open`."""

    def __init__(self, data_dir: Path, engine: Engine, url: str, class_names: tuple[str, str]):
        self.data_dir = data_dir
        self.url = url
        self.class_names = class_names
        self._images = data_dir / IMAGES_FOLDER
        self._engine = engine
        self._reading = sessionmaker(engine, expire_on_commit=False)
        self._writing = sessionmaker(writer(engine), expire_on_commit=False)
        self.trainings = Trainings(self._reading, self._writing, data_dir / TRAININGS_FOLDER)
        # Orders file writes and deletions with their rows in this process (add vs. forget).
        self._files = threading.Lock()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        url: str | None = None,
        *,
        class_names: tuple[str, str] = CLASS_NAMES,
    ) -> DatasetStore:
        """Open (creating or upgrading) the dataset in `data_dir`; its database is `url`, or
        the SQLite file `data_dir/dataset.sqlite3`."""
        class_names = check_class_names(class_names)
        data_dir = Path(data_dir).expanduser().absolute()
        try:
            (data_dir / IMAGES_FOLDER).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatasetError(f"cannot create {data_dir}: {error.strerror or error}") from None
        url = url or sqlite_url(data_dir)
        engine = make_engine(url)
        try:
            upgrade(engine)
        except DatasetError:
            engine.dispose()
            raise
        except SQLAlchemyError as error:
            engine.dispose()
            raise DatasetError(
                f"cannot open the dataset database {display_url(url)}: {_reason(error)}"
            ) from None
        return cls(data_dir, engine, url, class_names)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> DatasetStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- consent ------------------------------------------------------------------------------

    def collecting(self, guild_id: int | None) -> bool:
        """Whether images and votes may be kept in this guild; never in DMs (None)."""
        if guild_id is None:
            return False
        with self._reading.begin() as session:
            setting = session.get(GuildSetting, guild_id)
            return bool(setting and setting.collecting)

    def set_collecting(self, guild_id: int, on: bool, *, by: int) -> None:
        def change(session: Session) -> None:
            setting = session.get(GuildSetting, guild_id)
            if setting is None:
                setting = GuildSetting(guild_id=guild_id)
                session.add(setting)
            setting.collecting, setting.changed_by, setting.changed_at = on, by, _now()

        self._write_retrying(change)

    def guild_settings(self, guild_id: int) -> GuildSettings:
        """The server's settings; None values mean the environment's default."""
        with self._reading.begin() as session:
            return guilds.settings_of(guild_id, session.get(GuildSetting, guild_id))

    def update_guild_settings(self, guild_id: int, *, by: int, **changes: Any) -> GuildSettings:
        """Change some of a server's settings (`dataset.guilds.SETTINGS`), each checked first."""
        values = guilds.checked(changes)

        def change(session: Session) -> GuildSettings:
            row = session.get(GuildSetting, guild_id)
            if row is None:
                row = guilds.new_row(guild_id)
                session.add(row)
            guilds.apply(row, values, by=by, at=_now())
            session.flush()
            return guilds.settings_of(guild_id, row)

        return self._write_retrying(change)

    # -- images and votes ---------------------------------------------------------------------

    def add_image(
        self,
        data: bytes,
        *,
        guild_id: int | None = None,
        posted_by: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        filename: str = "",
        quota: Quota | None = None,
        poster_id: int | None = None,
    ) -> ImageRecord:
        """Keep `data` if it is an image we can train on (else `DatasetError`, saying why), held
        by the server `guild_id` (None: no server), within its `quota` (else `QuotaReached`).
        `poster_id`: the author of the message `message_id` that carried it. The same bytes are
        stored once: `new` is False when they already were."""
        where = (guild_id, posted_by, channel_id, message_id, filename, poster_id)
        return self._add(data, where, None, quota)[0]

    def add_image_and_vote(
        self,
        data: bytes,
        *,
        guild_id: int | None,
        user_id: int,
        label: str,
        source: str,
        moderator: bool = False,
        channel_id: int | None = None,
        message_id: int | None = None,
        filename: str = "",
        quota: Quota | None = None,
        poster_id: int | None = None,
    ) -> tuple[ImageRecord, VoteOutcome]:
        """`add_image` (given by `user_id`) and `vote` in one transaction: a vote refused (or a
        failed write) leaves no image behind. A vote on an image the server holds passes any
        quota."""
        self._check_vote(label, source)
        ballot = (user_id, label, source, moderator)
        where = (guild_id, user_id, channel_id, message_id, filename, poster_id)
        record, outcome = self._add(data, where, ballot, quota)
        assert outcome is not None
        return record, outcome

    def vote(
        self,
        sha256: str,
        *,
        guild_id: int | None,
        user_id: int,
        label: str,
        source: str,
        moderator: bool = False,
    ) -> VoteOutcome:
        """Record `user_id`'s label for the image in the server `guild_id` (None: no server); a
        second vote by them there replaces the first. `moderator`: they moderate that server."""
        self._check_vote(label, source)
        _check_sha256(sha256)
        guild = _guild(guild_id)

        def cast(session: Session) -> VoteOutcome:
            if session.get(Image, sha256) is None:
                raise DatasetError(f"image {sha256[:12]} is not in the dataset")
            outcome = self._cast(session, sha256, guild, (user_id, label, source, moderator))
            refresh_server_images(session, [(guild, sha256)])
            return outcome

        return self._write_retrying(cast)

    def label_of(self, sha256: str, guild_id: int | None) -> ImageLabel:
        """The image's votes in the server `guild_id` and the label they give it there; an
        unknown image is a `DatasetError`."""
        _check_sha256(sha256)
        with self._reading.begin() as session:
            if session.get(Image, sha256) is None:
                raise DatasetError(f"image {sha256[:12]} is not in the dataset")
            result = self._tally(session, sha256, _guild(guild_id))
        return ImageLabel(
            sha256,
            result.label,
            result.votes,
            result.moderator_votes,
            result.conflict,
            is_holdout(sha256),
        )

    def forget_user(self, user_id: int, guild_id: int | None = None) -> Forgotten:
        """Delete `user_id`'s votes and the images they posted in the server `guild_id` (None:
        in every server), then every image no server refers to any more: row, file, and its
        copies in trainings' work folders (`dataset.forgetting`)."""
        done = self._forget(lambda session: forget_person(session, user_id, guild_id))
        where = "everywhere" if guild_id is None else f"in {guild_id}"
        counts = (done.votes, done.posts, done.images)
        log.info("forgot user %s %s: %d votes, %d posts, %d images", user_id, where, *counts)
        return done

    def forget_messages(self, guild_id: int, message_ids: Iterable[int]) -> Forgotten:
        """Deleted messages: the images they carried leave the server `guild_id`, with its votes
        on them, unless a moderator there labelled them (`dataset.forgetting`)."""
        ids, guild = list(message_ids), _guild(guild_id)
        with self._reading.begin() as session:  # most deleted messages carried no kept image
            if not carried_any(session, guild, ids):
                return Forgotten(votes=0, images=0)
        done = self._forget(lambda session: forget_messages(session, guild, ids))
        log.info("deleted messages in %s: %d images left it", guild_id, done.posts)
        return done

    # -- reading the set ----------------------------------------------------------------------

    def usage(self, guild_id: int | None) -> Usage:
        """The images the server holds (an image two servers hold counts for both), and their
        bytes: what its quota bounds (`dataset.quotas`)."""
        with self._reading.begin() as session:
            return usage(session, _guild(guild_id))

    def summary(self, guild_id: int | None) -> Summary:
        """The server's data in figures (None: what belongs to no server, as imports)."""
        with self._reading.begin() as session:
            return summarize(session, _guild(guild_id), self.class_names, TOP_CONTRIBUTORS)

    def user_summary(self, user_id: int) -> UserSummary:
        """What `user_id` gave, per server: votes, and images they posted (counts only)."""
        with self._reading.begin() as session:
            votes = session.execute(
                select(Vote.guild_id, func.count())
                .where(Vote.user_id == user_id)
                .group_by(Vote.guild_id)
            ).all()
            images = session.execute(
                select(ImageRef.guild_id, func.count())
                .where(ImageRef.posted_by == user_id)
                .group_by(ImageRef.guild_id)
            ).all()
        return UserSummary(
            votes={int(g): int(n) for g, n in votes}, images={int(g): int(n) for g, n in images}
        )

    def labelled(self, guild_id: int | None, *, holdout: bool | None = None) -> list[LabelledImage]:
        """The server's labelled images, by label then hash; one split unless `holdout` is None."""
        return self._labelled([_guild(guild_id)], holdout)

    def message_links(self, guild_id: int, limit: int) -> list[tuple[str, int, int]]:
        """(sha256, channel id, message id) of the server's latest images kept from a message."""
        with self._reading.begin() as session:
            return message_links(session, _guild(guild_id), limit)

    def labelled_shared(
        self, *, holdout: bool | None = None, include: Iterable[int] = ()
    ) -> list[LabelledImage]:
        """The labelled images of the servers that share their labels (`sharing`), of no server
        (imports) and of `include`, each labelled by its server's votes; an image that two of
        them label differently is a conflict, left out. For the operator's default model."""
        with self._reading.begin() as session:
            sharing = session.scalars(
                select(GuildSetting.guild_id).where(GuildSetting.sharing.is_(True))
            ).all()
        return self._labelled(sorted({NO_GUILD, *sharing, *include}), holdout)

    def export(
        self, folder: Path, guild_id: int | None, *, holdout: bool | None = False
    ) -> dict[str, int]:
        """Write the server's labelled images as `folder/<class>/<sha256>.<ext>` and return the
        count per class: the training split by default (`holdout=True`: the holdout only; None:
        both). `folder` must not exist or be empty; the export is written beside it and renamed
        into place, so there is never a half-written one. `jedisith-train` takes it."""
        images = self.labelled(guild_id, holdout=holdout)
        return export_files(folder, [(i.label, i.path) for i in images], self.class_names)

    def export_shared(
        self, folder: Path, *, holdout: bool | None = False, include: Iterable[int] = ()
    ) -> dict[str, int]:
        """`export` of `labelled_shared`: the set for the operator's default model."""
        images = self.labelled_shared(holdout=holdout, include=include)
        return export_files(folder, [(i.label, i.path) for i in images], self.class_names)

    def import_folder(
        self,
        folder: Path,
        *,
        user_id: int = 0,
        guild_id: int | None = None,
        source: str = "import",
        moderator: bool = False,
    ) -> ImportReport:
        """Add every image of `folder/<class>/` (any depth) with a vote by `user_id` for its
        folder's class, in the server `guild_id` (None: no server); see `dataset.importing`."""
        return import_folder(
            self, folder, user_id=user_id, guild_id=guild_id, source=source, moderator=moderator
        )

    # -- internals ----------------------------------------------------------------------------

    def _write_retrying(self, change: Callable[[Session], T]) -> T:
        """Run `change` in a write transaction, again if it lost a race (on SQLite the write
        lock prevents races; on PostgreSQL two inserts can meet on a unique key)."""
        for attempt in range(_ATTEMPTS):
            try:
                with self._writing.begin() as session:
                    return change(session)
            except DBAPIError as error:
                if attempt == _ATTEMPTS - 1 or not _lost_race(error):
                    raise
                log.debug("a write lost a race (%s); trying again", _reason(error))
        raise AssertionError("unreachable")  # pragma: no cover

    def _add(
        self,
        data: bytes,
        where: tuple[int | None, int | None, int | None, int | None, str, int | None],
        ballot: tuple[int, str, str, bool] | None,
        quota: Quota | None,
    ) -> tuple[ImageRecord, VoteOutcome | None]:
        """Store the file, then in one transaction the image's row, its server's reference
        (checked against its `quota` first) and (given a `ballot`) the vote. `where`: (guild,
        giver, channel, message, file name, poster)."""
        guild_id, posted_by, channel_id, message_id, filename, poster_id = where
        info = inspect(data)
        sha256 = hashlib.sha256(data).hexdigest()
        path = image_path(self._images, sha256, info.format)
        guild = _guild(guild_id)

        def insert(session: Session) -> tuple[bool, VoteOutcome | None]:
            if quota is not None:
                check_room(session, guild, sha256, len(data), quota, posted_by)
            new = session.get(Image, sha256) is None
            if new:
                session.add(
                    Image(
                        sha256=sha256,
                        size=len(data),
                        format=info.format,
                        width=info.width,
                        height=info.height,
                        first_seen=_now(),
                        guild_id=guild_id,
                        channel_id=channel_id,
                        message_id=message_id,
                        filename=filename[:255],
                    )
                )
                session.flush()
            if session.get(ImageRef, (guild, sha256)) is None:
                session.add(
                    ImageRef(
                        guild_id=guild,
                        image_sha256=sha256,
                        posted_by=posted_by,
                        channel_id=channel_id,
                        message_id=message_id,
                        created_at=_now(),
                        poster_id=poster_id,
                    )
                )
                session.flush()
            outcome = self._cast(session, sha256, guild, ballot) if ballot else None
            refresh_server_images(session, [(guild, sha256)])
            return new, outcome

        with self._files:
            write_once(path, data)  # also puts back a file lost from under its row
            try:
                new, outcome = self._write_retrying(insert)
            except BaseException:
                self._remove_if_unknown(sha256, path)
                raise
        return ImageRecord(sha256, path, len(data), new, is_holdout(sha256)), outcome

    def _cast(
        self, session: Session, sha256: str, guild: int, ballot: tuple[int, str, str, bool]
    ) -> VoteOutcome:
        user_id, label, source, moderator = ballot
        # FOR UPDATE (PostgreSQL): the same person's vote changed in two processes at once is
        # changed one after the other, each seeing the other's label as `previous`.
        mine = session.scalars(
            select(Vote)
            .where(Vote.image_sha256 == sha256, Vote.guild_id == guild, Vote.user_id == user_id)
            .with_for_update()
        ).one_or_none()
        now = _now()
        previous = mine.label if mine is not None else None
        wanted = (label, moderator, source)
        if mine is None:
            mine = Vote(image_sha256=sha256, guild_id=guild, user_id=user_id, created_at=now)
            session.add(mine)
        if previous is None or (mine.label, mine.moderator, mine.source) != wanted:
            mine.label, mine.moderator, mine.source = wanted
            mine.updated_at = now
        session.flush()
        result = self._tally(session, sha256, guild)
        return VoteOutcome(
            changed=previous is not None and previous != label,
            previous=previous,
            label=result.label,
            votes=result.votes,
            conflict=result.conflict,
        )

    def _forget(self, change: Callable[[Session], Deleted]) -> Forgotten:
        """Run a forgetting transaction, then delete the files of the images it orphaned and
        their copies in work folders, and every stale work folder (`Trainings`)."""
        with self._files:
            done = self._write_retrying(change)
            paths = [image_path(self._images, sha, form) for sha, form in done.orphans]
            for path in paths:  # after the commit: a row never lacks its file
                remove(path)
            runs = self.trainings.runs
            if runs is not None:
                remove_copies(runs, {path.name for path in paths})
        self.trainings.recover_interrupted()  # marks what a killed process left, cleans up
        return Forgotten(done.votes, len(done.orphans), done.posts, done.others_votes)

    def _remove_if_unknown(self, sha256: str, path: Path) -> None:
        """After a failed add: the file goes unless a row (an earlier add) names it."""
        with self._reading.begin() as session:
            if session.get(Image, sha256) is None:
                remove(path)

    def _labelled(self, guild_ids: list[int], holdout: bool | None) -> list[LabelledImage]:
        """The images labelled in these servers; an image they label differently is left out."""
        with self._reading.begin() as session:
            return labelled_in(session, guild_ids, holdout, self.class_names, self._images)

    def _tally(self, session: Session, sha256: str, guild: int) -> Tally:
        rows = session.execute(
            select(Vote.label, Vote.moderator).where(
                Vote.image_sha256 == sha256, Vote.guild_id == guild
            )
        )
        return tally(rows, self.class_names)

    def _check_vote(self, label: str, source: str) -> None:
        if label not in _labels.answers(self.class_names):
            names = " or ".join(self.class_names)
            raise DatasetError(f"the label must be {names} (or {_labels.NEITHER}), not {label!r}")
        if source not in VOTE_SOURCES:
            raise DatasetError(f"a vote's source is {' or '.join(VOTE_SOURCES)}, not {source!r}")


def _now() -> datetime:
    return datetime.now(UTC)


def _reason(error: SQLAlchemyError) -> str:
    """The driver's own words for a database error, on one line."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__


def _lost_race(error: DBAPIError) -> bool:
    """A unique key taken by a concurrent writer, a deadlock victim, a serialization failure:
    the same transaction run again sees the winner's commit and does the right thing."""
    if isinstance(error, IntegrityError):
        return True
    return getattr(error.orig, "sqlstate", None) in ("40001", "40P01")


def _check_sha256(sha256: str) -> None:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise DatasetError(f"not an image hash (64 lowercase hex digits): {str(sha256)[:70]!r}")


def _guild(guild_id: int | None) -> int:
    """The stored guild id: 0 for no server."""
    return NO_GUILD if guild_id is None else guild_id
