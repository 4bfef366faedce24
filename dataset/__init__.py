"""The labelled-image store: images people showed the bot, their votes, and its trainings.

    store = DatasetStore.open(DATA_DIR)            # DATA_DIR/dataset.sqlite3 + DATA_DIR/images/
    image = store.add_image(data, guild_id=..., channel_id=..., message_id=...)
    store.vote(image.sha256, user_id=..., guild_id=..., label="sith", source="button")
    store.export(Path("runs/data"))                # runs/data/jedi/, runs/data/sith/
    training = store.trainings.start(...)          # the bot-wide training lock (TrainingBusy)

See `dataset.store` for the design, `dataset.trainings` for the training lock, `dataset.labels`
for the label and holdout rules, and `dataset.migrations` for the schema's history.
"""

from dataset.labels import CLASS_NAMES, HOLDOUT_PERCENT, Tally, is_holdout, tally
from dataset.records import (
    FINAL_STATUSES,
    TRAINING_STATUSES,
    VOTE_SOURCES,
    DatasetError,
    Forgotten,
    ImageLabel,
    ImageRecord,
    ImportReport,
    LabelledImage,
    Summary,
    TrainingBusy,
    TrainingRecord,
    VoteOutcome,
)
from dataset.store import DatasetStore
from dataset.trainings import Trainings

__all__ = [
    "CLASS_NAMES",
    "FINAL_STATUSES",
    "HOLDOUT_PERCENT",
    "TRAINING_STATUSES",
    "VOTE_SOURCES",
    "DatasetError",
    "DatasetStore",
    "Forgotten",
    "ImageLabel",
    "ImageRecord",
    "ImportReport",
    "LabelledImage",
    "Summary",
    "Tally",
    "TrainingBusy",
    "TrainingRecord",
    "Trainings",
    "VoteOutcome",
    "is_holdout",
    "tally",
]
