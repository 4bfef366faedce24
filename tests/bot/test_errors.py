"""Which errors the user is told about, and in what words; the rest are bugs, logged."""

from __future__ import annotations

from bot.errors import NoImageFound, user_message
from model.preprocess import CorruptImageError
from model.worker import WorkerBusy, WorkerClosed, WorkerTimeout


def test_user_fixable_errors_are_told_as_they_are() -> None:
    assert user_message(NoImageFound("I found no image.")) == "I found no image."
    assert user_message(CorruptImageError("The image is damaged.")) == "The image is damaged."
    assert "busy" in (user_message(WorkerBusy()) or "")


def test_a_stuck_or_stopped_model_gets_a_clear_line() -> None:
    assert user_message(WorkerTimeout()) == "That took me too long. Try again in a moment."
    assert user_message(WorkerClosed("the model worker has stopped")) == (
        "I'm restarting. Try again in a moment."
    )


def test_bugs_are_not_shown_to_users() -> None:
    assert user_message(KeyError("internal")) is None
    assert user_message(RuntimeError("the model exploded")) is None


def test_host_paths_never_reach_a_reply() -> None:
    from bot.errors import UserFacingError, scrub_paths
    from dataset import DatasetError

    said = user_message(DatasetError("cannot create /srv/jedisith/data: Permission denied"))
    assert said == "cannot create data: Permission denied"
    said = user_message(UserFacingError("I can't roll back: cannot read ~/models/x/CURRENT."))
    assert said == "I can't roll back: cannot read CURRENT."
    windows, spaced = r"C:\Users\me\model.keras", "'/tmp/a b/c.png'"  # up to the space
    assert scrub_paths(f"{windows} and {spaced}") == "model.keras and 'a b/c.png'"
    kept = (
        "Try `/features 3`, </retrain:12>, `!rollback shared [N]`: 2/3 images in jedi/ and "
        "sith/, at https://discord.com/developers/applications or http://127.0.0.1:8080/api/v10"
    )
    assert scrub_paths(kept) == kept
