"""The labelled-image store: what the bot learns from, kept with consent.

One `DatasetStore` per process wraps one Engine (thread-safe: the bot calls it through
`asyncio.to_thread`) and opens a short session per call, so nothing it returns is tied to a
session: every method returns frozen records (`dataset.records`). Each write is one whole
transaction. On SQLite it begins with the write lock taken (`database.writer`), so concurrent
writers queue; on PostgreSQL writers from several processes (the bot's shards) run at once, and
one that loses a race on a unique key (two inserts of the same image or of the same person's
vote) or is chosen as a deadlock's victim is simply run again, on what the winner committed.

- **Images** are files named by their SHA-256 (`dataset.files`) plus one row each; the file is
  written before the row, so a row never names a missing file. The same bytes are stored once.
- **Votes**: one per (image, person); a second vote replaces the first. Labels and the holdout
  split are computed from the votes when asked (`dataset.labels`), never stored.
- **Consent**: off in every guild until someone turns it on (`set_collecting`); the bot asks
  `collecting(guild_id)` before it keeps an image or a vote (the store itself records what it
  is given: an import from the command line belongs to no guild).
- **Forgetting** a person deletes their votes and every image nobody else voted on, file too.
- **Trainings**: the trainings table and the bot-wide training lock are `store.trainings`
  (`dataset.trainings`), on the same engine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dataset.database import display_url, make_engine, sqlite_url, upgrade, writer
from dataset.files import IMAGES_FOLDER, image_path, inspect, remove, write_once
from dataset.labels import CLASS_NAMES, Tally, is_holdout, split_of, tally
from dataset.records import (
    VOTE_SOURCES,
    DatasetError,
    Forgotten,
    ImageLabel,
    ImageRecord,
    ImportReport,
    LabelledImage,
    Summary,
    VoteOutcome,
)
from dataset.schema import GuildSetting, Image, Training, Vote
from dataset.trainings import Trainings

log = logging.getLogger(__name__)

TOP_CONTRIBUTORS = 5
_CLASS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")  # a folder name and a label
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
        self.trainings = Trainings(self._reading, self._writing)
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
        class_names = _check_class_names(class_names)
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

    # -- images and votes ---------------------------------------------------------------------

    def add_image(
        self,
        data: bytes,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        filename: str = "",
    ) -> ImageRecord:
        """Keep `data` if it is an image we can train on (else `DatasetError`, saying why).
        The same bytes are stored once: `new` is False when they already were."""
        info = inspect(data)
        sha256 = hashlib.sha256(data).hexdigest()
        path = image_path(self._images, sha256, info.format)

        def insert(session: Session) -> bool:
            if session.get(Image, sha256) is not None:
                return False
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
            return True

        with self._files:
            write_once(path, data)  # also puts back a file lost from under its row
            new = self._write_retrying(insert)
        return ImageRecord(sha256, path, len(data), new, is_holdout(sha256))

    def vote(
        self,
        sha256: str,
        *,
        user_id: int,
        guild_id: int | None,
        label: str,
        source: str,
        moderator: bool = False,
    ) -> VoteOutcome:
        """Record `user_id`'s label for the image; a second vote by them replaces the first."""
        self._check_label(label)
        if source not in VOTE_SOURCES:
            raise DatasetError(f"a vote's source is {' or '.join(VOTE_SOURCES)}, not {source!r}")
        _check_sha256(sha256)

        def cast(session: Session) -> VoteOutcome:
            if session.get(Image, sha256) is None:
                raise DatasetError(f"image {sha256[:12]} is not in the dataset")
            # FOR UPDATE (PostgreSQL): the same person's vote changed in two processes at once
            # is changed one after the other, each seeing the other's label as `previous`.
            mine = session.scalars(
                select(Vote)
                .where(Vote.image_sha256 == sha256, Vote.user_id == user_id)
                .with_for_update()
            ).one_or_none()
            now = _now()
            previous = mine.label if mine is not None else None
            wanted = (label, moderator, source, guild_id)
            if mine is None:
                mine = Vote(image_sha256=sha256, user_id=user_id, created_at=now)
                session.add(mine)
            stored = (mine.label, mine.moderator, mine.source, mine.guild_id)
            if previous is None or stored != wanted:
                mine.label, mine.moderator, mine.source, mine.guild_id = wanted
                mine.updated_at = now
            session.flush()
            result = self._tally(session, sha256)
            return VoteOutcome(
                changed=previous is not None and previous != label,
                previous=previous,
                label=result.label,
                votes=result.votes,
                conflict=result.conflict,
            )

        return self._write_retrying(cast)

    def label_of(self, sha256: str) -> ImageLabel:
        """The image's votes and the label they give it; an unknown image is a `DatasetError`."""
        _check_sha256(sha256)
        with self._reading.begin() as session:
            if session.get(Image, sha256) is None:
                raise DatasetError(f"image {sha256[:12]} is not in the dataset")
            result = self._tally(session, sha256)
        return ImageLabel(
            sha256,
            result.label,
            result.votes,
            result.moderator_votes,
            result.conflict,
            is_holdout(sha256),
        )

    def forget_user(self, user_id: int) -> Forgotten:
        """Delete every vote of `user_id` (all guilds) and every image nobody else voted on,
        row and file."""

        def forget(session: Session) -> tuple[int, list[tuple[str, str]]]:
            theirs = select(Vote.image_sha256).where(Vote.user_id == user_id)
            others = select(Vote.image_sha256).where(Vote.user_id != user_id)
            orphans = [
                (sha256, image_format)
                for sha256, image_format in session.execute(
                    select(Image.sha256, Image.format).where(
                        Image.sha256.in_(theirs), Image.sha256.not_in(others)
                    )
                )
            ]
            votes = session.execute(delete(Vote).where(Vote.user_id == user_id)).rowcount
            for chunk in _chunks([sha256 for sha256, _ in orphans], 500):
                session.execute(delete(Image).where(Image.sha256.in_(chunk)))
            return votes, orphans

        with self._files:
            votes, orphans = self._write_retrying(forget)
            for sha256, image_format in orphans:  # after the commit: a row never lacks its file
                remove(image_path(self._images, sha256, image_format))
        log.info("forgot user %s: %d votes, %d images", user_id, votes, len(orphans))
        return Forgotten(votes=votes, images=len(orphans))

    # -- reading the set ----------------------------------------------------------------------

    def summary(self, guild_id: int | None = None) -> Summary:
        """The dataset in figures; contributors and `guild_images` within `guild_id` if given."""
        with self._reading.begin() as session:
            images = session.scalar(select(func.count()).select_from(Image)) or 0
            votes = _votes_by_image(session)
            last_published = session.scalar(
                select(func.max(Training.started_at)).where(Training.status == "published")
            )
            top = select(Vote.user_id, func.count().label("n")).group_by(Vote.user_id)
            guild_images = None
            if guild_id is not None:
                top = top.where(Vote.guild_id == guild_id)
                guild_images = session.scalar(
                    select(func.count(func.distinct(Vote.image_sha256))).where(
                        Vote.guild_id == guild_id
                    )
                )
            contributors = session.execute(
                top.order_by(func.count().desc(), Vote.user_id).limit(TOP_CONTRIBUTORS)
            ).all()

        counts = {name: {"train": 0, "holdout": 0} for name in self.class_names}
        conflicts: list[tuple[str, dict[str, int]]] = []
        since = 0
        for sha256, rows in votes.items():
            result = tally(((label, moderator) for label, moderator, _ in rows), self.class_names)
            if result.conflict:
                conflicts.append((sha256, result.votes))
            if result.label is None:
                continue
            counts.setdefault(result.label, {"train": 0, "holdout": 0})[split_of(sha256)] += 1
            first_vote = min(created for _, _, created in rows)
            if last_published is None or first_vote > _aware(last_published):
                since += 1
        conflicts.sort(key=lambda item: (-sum(item[1].values()), item[0]))
        labelled = sum(sum(splits.values()) for splits in counts.values())
        return Summary(
            counts=counts,
            since_last_training=since,
            conflicts=conflicts,
            unlabelled=images - labelled,
            contributors=[(int(user), int(n)) for user, n in contributors],
            guild_images=guild_images,
            images=images,
            votes=sum(len(rows) for rows in votes.values()),
        )

    def labelled(self, *, holdout: bool | None = None) -> list[LabelledImage]:
        """Every image with a label, by label then hash; only one split unless `holdout` is None."""
        with self._reading.begin() as session:
            formats = dict(session.execute(select(Image.sha256, Image.format)).all())
            votes = _votes_by_image(session)
        images = []
        for sha256, rows in votes.items():
            result = tally(((label, moderator) for label, moderator, _ in rows), self.class_names)
            held = is_holdout(sha256)
            if result.label is None or (holdout is not None and held != holdout):
                continue
            path = image_path(self._images, sha256, formats[sha256])
            images.append(LabelledImage(sha256, result.label, path, held))
        images.sort(key=lambda image: (image.label, image.sha256))
        return images

    def export(self, folder: Path, *, holdout: bool | None = False) -> dict[str, int]:
        """Write the labelled images as `folder/<class>/<sha256>.<ext>` (hard links where the
        file system allows, else copies) and return the count per class.

        The training split by default (`holdout=True`: the holdout only; None: both). `folder`
        must not exist or be empty; the export is written beside it and renamed into place, so
        there is never a half-written one. It is what `jedisith-train` and
        `training.data.load_dataset` take.
        """
        folder = Path(folder).expanduser().absolute()
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise DatasetError(f"{folder} is not empty: export into a new or empty folder")
        images = self.labelled(holdout=holdout)
        counts = dict.fromkeys(self.class_names, 0)
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.export-", dir=folder.parent))
        except OSError as error:
            raise DatasetError(f"cannot export to {folder}: {error.strerror or error}") from None
        try:
            for name in self.class_names:
                (staging / name).mkdir()
            for image in images:
                if image.label not in counts:  # a label from other class names: not this set
                    continue
                try:
                    _link_or_copy(image.path, staging / image.label / image.path.name)
                except FileNotFoundError:
                    log.warning("image %s has no file %s: not exported", image.sha256, image.path)
                    continue
                counts[image.label] += 1
            os.chmod(staging, 0o755)  # mkdtemp made it private
            os.rename(staging, folder)  # replaces `folder` only if it is (still) empty
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise DatasetError(f"cannot export to {folder}: {error.strerror or error}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return counts

    def import_folder(
        self,
        folder: Path,
        *,
        user_id: int = 0,
        source: str = "import",
        moderator: bool = False,
    ) -> ImportReport:
        """Add every image of `folder/<class>/` (any depth) with a vote by `user_id` for its
        folder's class. Files that are not usable images are skipped with the reason; a folder
        that is not a class is a `DatasetError` naming it."""
        folder = Path(folder)
        if not folder.is_dir():
            raise DatasetError(f"{folder} is not a folder; it should hold {self._folders()}")
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        classes = [p for p in entries if p.is_dir()]
        unknown = [p.name for p in classes if p.name not in self.class_names]
        if unknown:
            raise DatasetError(
                f"{folder} has folders that are not classes: {', '.join(unknown)} "
                f"(the classes are {self._folders()})"
            )
        if not classes:
            raise DatasetError(f"{folder} holds no class folder; it should hold {self._folders()}")
        skipped = [(str(p), "not in a class folder") for p in entries if not p.is_dir()]
        added = already = 0
        seen: dict[str, str] = {}  # sha256 -> its class in this import
        for class_folder in classes:
            label = class_folder.name
            for path in _files_in(class_folder):
                try:
                    record = self.add_image(path.read_bytes(), filename=path.name)
                except OSError as error:
                    skipped.append((str(path), f"cannot read the file: {error.strerror or error}"))
                    continue
                except DatasetError as error:
                    skipped.append((str(path), str(error)))
                    continue
                if seen.setdefault(record.sha256, label) != label:
                    other = seen[record.sha256]
                    skipped.append((str(path), f"the same image is in {other}/; kept as {other}"))
                    continue
                self.vote(
                    record.sha256,
                    user_id=user_id,
                    guild_id=None,
                    label=label,
                    source=source,
                    moderator=moderator,
                )
                added, already = (added + 1, already) if record.new else (added, already + 1)
        return ImportReport(added=added, already=already, skipped=skipped)

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

    def _tally(self, session: Session, sha256: str) -> Tally:
        rows = session.execute(
            select(Vote.label, Vote.moderator).where(Vote.image_sha256 == sha256)
        )
        return tally(rows, self.class_names)

    def _check_label(self, label: str) -> None:
        if label not in self.class_names:
            raise DatasetError(f"the label must be {' or '.join(self.class_names)}, not {label!r}")

    def _folders(self) -> str:
        return " and ".join(f"{name}/" for name in self.class_names)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """An aggregate (MAX) of a time column may come back without its zone on SQLite."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


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


def _check_class_names(class_names: tuple[str, str]) -> tuple[str, str]:
    names = tuple(class_names)
    if len(names) != 2 or len(set(names)) != 2:
        raise DatasetError(f"the dataset needs two different class names, not {names}")
    for name in names:
        if not isinstance(name, str) or not _CLASS_NAME.fullmatch(name):
            raise DatasetError(f"a class name must be a short folder name, not {name!r}")
    return names  # type: ignore[return-value]


def _check_sha256(sha256: str) -> None:
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise DatasetError(f"not an image hash (64 lowercase hex digits): {str(sha256)[:70]!r}")


def _votes_by_image(session: Session) -> dict[str, list[tuple[str, bool, datetime]]]:
    """Every vote, as (label, moderator, created_at) per image."""
    votes: dict[str, list[tuple[str, bool, datetime]]] = defaultdict(list)
    for sha256, label, moderator, created in session.execute(
        select(Vote.image_sha256, Vote.label, Vote.moderator, Vote.created_at)
    ):
        votes[sha256].append((label, moderator, created))
    return votes


def _files_in(folder: Path) -> list[Path]:
    """The files under `folder`, any depth, hidden ones left out (as `training.data` does)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(source, target)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
