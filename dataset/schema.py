"""The tables, as SQLAlchemy 2 typed models; `migrations/` creates exactly these.

Portable by construction: plain types, named constraints (one naming convention, so a later
migration can refer to them on PostgreSQL as on SQLite), and the one partial index written for
both dialects. Discord ids are `BigInteger` (snowflakes pass 2^31 and stay below 2^63: BIGINT
on PostgreSQL, where INTEGER would overflow). Times are stored as UTC and always read back
timezone-aware (`UTCDateTime`: TIMESTAMP WITH TIME ZONE on PostgreSQL; SQLite keeps no zone).
JSON is JSON on both, booleans are BOOLEAN (0/1 on SQLite).

A test checks that the migrated schema equals this metadata (alembic's `compare_metadata`), so a
change here without a migration fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from dataset.records import OOD_POLICIES, TRAINING_KINDS, TRAINING_STATUSES, VOTE_SOURCES

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ONE_RUNNING_WHERE = "status = 'running'"
ONE_QUEUED_WHERE = "status = 'queued'"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no zone: it is added back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the dataset stores timezone-aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Image(Base):
    """One stored picture, by the SHA-256 of its bytes: the file `images/<sha[:2]>/<sha>.<ext>`."""

    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(8))  # Pillow's name: JPEG, PNG, ...
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    # Where it was first posted; null for imported images (`image_refs` says which servers hold it).
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(255), default="")


class Vote(Base):
    """One person's label for one image: a second vote by the same person replaces the first."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("image_sha256", "guild_id", "user_id"),
        CheckConstraint(_in("source", VOTE_SOURCES), name="source"),
        Index(None, "user_id"),
        Index(None, "guild_id"),
        Index(None, "guild_id", "user_id"),  # a server's top contributors (0005)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("images.sha256", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(BigInteger)
    guild_id: Mapped[int] = mapped_column(BigInteger)  # where the vote was cast; 0: no server
    label: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImageRef(Base):
    """A server that holds an image (0: no server, as for imports); the image goes with its last
    reference and vote."""

    __tablename__ = "image_refs"
    __table_args__ = (
        Index(None, "image_sha256"),
        Index(None, "poster_id"),  # `!forget` finds what a person posted, in every server
        Index(None, "guild_id", "message_id"),  # a deleted message finds its images (0005)
        # What a server, and a member, added today: the daily quota (0006).
        Index(None, "guild_id", "created_at"),
        Index(None, "posted_by", "created_at"),
    )

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    image_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("images.sha256", ondelete="CASCADE"), primary_key=True
    )
    posted_by: Mapped[int | None] = mapped_column(BigInteger)  # who gave it; null for imports
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the message that carried it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The author of that message (0005): null for imports and for what was kept before 0005.
    poster_id: Mapped[int | None] = mapped_column(BigInteger)


class ServerImage(Base):
    """What one server has of one image, kept from its votes and its reference by the store in
    the transaction that changes them (`dataset.queries.refresh_server_images`), so `!dataset`
    and the quota count rows instead of every vote (0005). Derived: rebuilt from the votes."""

    __tablename__ = "server_images"
    __table_args__ = (
        Index(None, "guild_id", "label", "holdout", "vote_count"),
        Index(None, "guild_id", "first_vote_at", "label"),
        Index(None, "guild_id", "conflict", "vote_count", "image_sha256"),
        Index(None, "guild_id", "held", "size"),
    )

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    image_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("images.sha256", ondelete="CASCADE"), primary_key=True
    )
    held: Mapped[bool] = mapped_column(Boolean)  # the server holds it (an `image_refs` row)
    size: Mapped[int] = mapped_column(Integer)  # the image's bytes
    holdout: Mapped[bool] = mapped_column(Boolean)
    label: Mapped[str | None] = mapped_column(String(32))  # by the server's votes; None: none
    conflict: Mapped[bool] = mapped_column(Boolean)  # voted on, with no majority
    votes: Mapped[dict[str, int] | None] = mapped_column(JSON)  # label -> votes; None: none
    vote_count: Mapped[int] = mapped_column(Integer)  # all its votes in that server
    first_vote_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The members whose vote there gives it its label (0: no label), and whether a moderator's
    # does: a held-out image judges that server's models only when vouched for (0008).
    label_voters: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    moderated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class GuildSetting(Base):
    """A server's consent to collection (absent: no) and its settings (null: the environment's)."""

    __tablename__ = "guild_settings"
    __table_args__ = (CheckConstraint(_in("ood_policy", OOD_POLICIES), name="ood_policy"),)

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    collecting: Mapped[bool] = mapped_column(Boolean, default=False)
    sharing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ood_policy: Mapped[str | None] = mapped_column(String(8))
    uncertain_band: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[list[int] | None] = mapped_column(JSON)
    ask_every: Mapped[int | None] = mapped_column(Integer)  # asking for labels (0006)
    ask_per_hour: Mapped[int | None] = mapped_column(Integer)
    holdout_min_voters: Mapped[int | None] = mapped_column(Integer)  # (0008)
    changed_by: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Training(Base):
    """A training run; the row with status "running" is its scope's training lock."""

    __tablename__ = "trainings"
    __table_args__ = (
        CheckConstraint(_in("status", TRAINING_STATUSES), name="status"),
        CheckConstraint(_in("kind", TRAINING_KINDS), name="kind"),
        # At most one running training per scope: two concurrent starters cannot both insert one.
        Index(
            "uq_trainings_one_running",
            "scope",
            unique=True,
            sqlite_where=text(ONE_RUNNING_WHERE),
            postgresql_where=text(ONE_RUNNING_WHERE),
        ),
        # At most one waiting training per scope, and one running full training per slot: the
        # cluster's MAX_TRAININGS cannot be overrun by two processes promoting at once (0004).
        Index(
            "uq_trainings_one_queued",
            "scope",
            unique=True,
            sqlite_where=text(ONE_QUEUED_WHERE),
            postgresql_where=text(ONE_QUEUED_WHERE),
        ),
        Index(
            "uq_trainings_slot",
            "slot",
            unique=True,
            sqlite_where=text(ONE_RUNNING_WHERE),
            postgresql_where=text(ONE_RUNNING_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # Whose model it trains: a server's id, or 0 for the operator's default model (0003).
    scope: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    kind: Mapped[str] = mapped_column(String(8), default="full", server_default="full")
    guild_id: Mapped[int | None] = mapped_column(BigInteger)  # where it was asked for
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the progress message
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # `!retrain cancel` typed in a process that does not run the trainer: the one that does
    # sees these on its next heartbeat and stops it (migration 0002).
    cancel_requested_by: Mapped[int | None] = mapped_column(BigInteger)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slot: Mapped[int | None] = mapped_column(Integer)  # a running full training's slot (0004)
