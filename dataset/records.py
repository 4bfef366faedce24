"""What the store hands back: frozen records (never live database rows) and its errors.

Every method of `DatasetStore` returns these plain values, so a caller in another thread (the
bot calls the store through `asyncio.to_thread`) never touches a session or a lazy attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

VOTE_SOURCES = ("button", "teach", "import")
RUNNING = "running"
QUEUED = "queued"  # a full training waiting for one of the cluster's MAX_TRAININGS slots
FINAL_STATUSES = ("published", "refused", "failed", "cancelled", "interrupted")
TRAINING_STATUSES = (RUNNING, *FINAL_STATUSES, QUEUED)
TRAINING_KINDS = ("head", "full")
OOD_POLICIES = ("refuse", "warn", "off")
NO_GUILD = 0  # the guild id of what belongs to no server (imports), and the default model's scope
MB = 1024 * 1024


class DatasetError(ValueError):
    """Something a user asked of the dataset that cannot be done; the message says why."""


@dataclass(frozen=True)
class DailyQuota:
    """The most images, and bytes of them, one member and one server may add in a day (UTC)."""

    member_images: int
    member_bytes: int
    server_images: int
    server_bytes: int


@dataclass(frozen=True)
class Quota:
    """The most images, and bytes of them, one server may hold (an image two servers hold counts
    for both), and what may be added in a day (`dataset.quotas`)."""

    images: int
    bytes: int
    daily: DailyQuota | None = None


@dataclass(frozen=True)
class Usage:
    """The images one server holds (its references) and their bytes (`DatasetStore.usage`)."""

    images: int
    bytes: int


class QuotaReached(DatasetError):
    """A new image would take its server past its quota: nothing was kept."""

    def __init__(self, quota: Quota, usage: Usage, size: int) -> None:
        super().__init__(
            f"This server keeps at most {quota.images:,} images and {megabytes(quota.bytes)} of "
            f"them; it holds {usage.images:,} ({megabytes(usage.bytes)}): no room for this one "
            f"({megabytes(size)})."
        )
        self.quota, self.usage, self.size = quota, usage, size


def megabytes(size: int) -> str:
    """`size` bytes for people: "200 MB", "1.4 MB", "20 kB", "300 bytes"."""
    if size >= 10 * MB:
        return f"{size / MB:,.0f} MB"
    if size >= MB // 10:
        return f"{size / MB:.1f} MB"
    return f"{size / 1024:.0f} kB" if size >= 1024 else f"{size} bytes"


@dataclass(frozen=True)
class ImageRecord:
    """A stored image: `new` is False when the same bytes were already there."""

    sha256: str
    path: Path
    size: int
    new: bool
    holdout: bool


@dataclass(frozen=True)
class VoteOutcome:
    """What one vote did.

    `previous` is the voter's earlier label on this image (None for a first vote); `changed` is
    True only when this vote replaced a different earlier label. `label` is the image's label
    after the vote (None when tied), `votes` counts everyone's votes per label.
    """

    changed: bool
    previous: str | None
    label: str | None
    votes: dict[str, int]
    conflict: bool


@dataclass(frozen=True)
class ImageLabel:
    """An image's votes and the label they give it (`DatasetStore.label_of`)."""

    sha256: str
    label: str | None
    votes: dict[str, int]  # everyone's votes per label
    moderator_votes: dict[str, int]
    conflict: bool
    holdout: bool


@dataclass(frozen=True)
class LabelledImage:
    sha256: str
    label: str
    path: Path
    holdout: bool
    voters: int = 0  # the members whose vote gives it its label (in one server: distinct)
    moderated: bool = False  # a moderator's vote gives it its label


@dataclass(frozen=True)
class GuildSettings:
    """A server's settings; None means the environment's default (`DatasetStore.guild_settings`)."""

    guild_id: int
    collecting: bool = False
    sharing: bool = False  # its labels may train the operator's default model
    ood_policy: str | None = None  # refuse, warn or off
    uncertain_band: float | None = None
    channels: tuple[int, ...] | None = None  # None: every channel
    ask_every: int | None = None  # asks for a label on one verdict in this many at most; 0: never
    ask_per_hour: int | None = None  # and this many times an hour per channel at most
    holdout_min_voters: int | None = None  # members a held-out image's label needs to judge
    changed_by: int | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True)
class UserSummary:
    """What one person gave, per server (0: no server), in counts only (`!dataset` in a DM)."""

    votes: dict[int, int]  # guild id -> votes
    images: dict[int, int]  # guild id -> images they posted there

    @property
    def total(self) -> int:
        return sum(self.votes.values())


@dataclass(frozen=True)
class Forgotten:
    """What `forget_user` or `forget_messages` deleted."""

    votes: int  # the person's own votes
    images: int  # images no server held any more: row, file and copies gone
    posts: int = 0  # (server, image) records of the images they posted (or the messages held)
    others_votes: int = 0  # the votes other people had cast on those, in those servers


@dataclass(frozen=True)
class Summary:
    """The dataset in figures (`!dataset`, `jedisith-dataset info`)."""

    counts: dict[str, dict[str, int]]  # label -> {"train": n, "holdout": n}
    since_last_training: int  # images first voted on after the last published training started
    # (sha256, everyone's votes per label) of the most voted `CONFLICTS_LISTED` conflicts
    conflicts: list[tuple[str, dict[str, int]]]
    unlabelled: int  # images without a label, conflicts included
    contributors: list[tuple[int, int]]  # (user_id, votes), most first, top 5
    guild_images: int | None  # images this server holds (the same as `images`)
    images: int  # images this server holds: voted on or posted there
    votes: int  # this server's votes
    conflict_count: int  # images with disagreeing votes, all of them
    # Held-out Jedi and Sith images not labelled by a moderator, by their label's voters
    # (`vouched_holdout` counts those that judge models); and those a moderator labelled.
    holdout_voters: dict[int, int] = field(default_factory=dict)
    holdout_moderated: int = 0

    @property
    def labelled(self) -> int:
        return sum(sum(splits.values()) for splits in self.counts.values())

    def vouched_holdout(self, min_voters: int) -> tuple[int, int]:
        """(held-out Jedi and Sith images that judge models, those waiting for more votes)
        when a label needs `min_voters` members or a moderator."""
        enough = sum(n for voters, n in self.holdout_voters.items() if voters >= min_voters)
        waiting = sum(self.holdout_voters.values()) - enough
        return enough + self.holdout_moderated, waiting


@dataclass(frozen=True)
class ImportReport:
    added: int  # images new to the store
    already: int  # images that were already stored (their votes are still cast)
    skipped: list[tuple[str, str]]  # (path, reason)


@dataclass(frozen=True)
class TrainingRecord:
    """One row of the trainings table: a training that ran, or runs (status "running")."""

    id: int
    status: str
    guild_id: int | None  # where it was asked for
    channel_id: int | None
    message_id: int | None  # the progress message
    user_id: int | None
    pid: int | None
    host: str
    params: dict[str, Any]
    result: dict[str, Any]
    version: int | None  # the model version it published
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    # Someone asked it to stop (`Trainings.request_cancel`): who and when; None if nobody.
    cancel_requested_by: int | None = None
    cancel_requested_at: datetime | None = None
    scope: int = NO_GUILD  # whose model: a server's id, or 0 for the default model
    kind: str = "full"  # "head" or "full"
    slot: int | None = None  # a running full training's slot, 0 to MAX_TRAININGS - 1

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None


class TrainingBusy(DatasetError):
    """A training of the same scope is already running or queued; `training` is that one."""

    def __init__(self, training: TrainingRecord) -> None:
        started = training.started_at.strftime("%Y-%m-%d %H:%M UTC")
        state = "already running" if training.status == RUNNING else "already queued"
        super().__init__(f"training {training.id} is {state} (started {started})")
        self.training = training
