"""The labelled-image store: images people showed the bot, their votes, and its trainings.

    store = DatasetStore.open(DATA_DIR)            # DATA_DIR/dataset.sqlite3 + DATA_DIR/images/
    image = store.add_image(data, guild_id=..., channel_id=..., message_id=...)
    store.vote(image.sha256, guild_id=..., user_id=..., label="sith", source="button")
    store.export(Path("runs/data"), guild_id)      # that server's labels: runs/data/jedi/, sith/
    store.export_shared(Path("runs/data"))         # the sharing servers': the default model's
    training = store.trainings.start(scope=..., ...)  # one training per scope (TrainingBusy)

See `dataset.store` for the design, `dataset.trainings` for the training lock, `dataset.labels`
for the label and holdout rules, and `dataset.migrations` for the schema's history.
"""

from dataset.labels import CLASS_NAMES, HOLDOUT_PERCENT, Tally, is_holdout, tally
from dataset.quotas import DailyQuotaReached
from dataset.records import (
    FINAL_STATUSES,
    NO_GUILD,
    OOD_POLICIES,
    TRAINING_KINDS,
    TRAINING_STATUSES,
    VOTE_SOURCES,
    DailyQuota,
    DatasetError,
    Forgotten,
    GuildSettings,
    ImageLabel,
    ImageRecord,
    ImportReport,
    LabelledImage,
    Quota,
    QuotaReached,
    Summary,
    TrainingBusy,
    TrainingRecord,
    Usage,
    UserSummary,
    VoteOutcome,
)
from dataset.store import DatasetStore
from dataset.trainings import Trainings

__all__ = [
    "CLASS_NAMES",
    "FINAL_STATUSES",
    "HOLDOUT_PERCENT",
    "NO_GUILD",
    "OOD_POLICIES",
    "TRAINING_KINDS",
    "TRAINING_STATUSES",
    "VOTE_SOURCES",
    "DailyQuota",
    "DailyQuotaReached",
    "DatasetError",
    "DatasetStore",
    "Forgotten",
    "GuildSettings",
    "ImageLabel",
    "ImageRecord",
    "ImportReport",
    "LabelledImage",
    "Quota",
    "QuotaReached",
    "Summary",
    "Tally",
    "TrainingBusy",
    "TrainingRecord",
    "Trainings",
    "Usage",
    "UserSummary",
    "VoteOutcome",
    "is_holdout",
    "tally",
]
