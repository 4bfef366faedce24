"""The errors a user can cause, shared by every feature, and the one line each is shown as."""

from __future__ import annotations

from discord.ext import commands

from bot.replies import RESTARTING
from dataset import DatasetError
from model.preprocess import ImageError
from model.worker import WorkerBusy, WorkerClosed, WorkerTimeout


class UserFacingError(Exception):
    """A problem the user can fix; the message is shown to them as it is."""


class NoImageFound(UserFacingError):
    """The command found no image to work on."""


class DownloadFailed(UserFacingError):
    """An attachment could not be downloaded."""


class NotAllowed(commands.CheckFailure):
    """The user lacks the permission a command needs (a check that fails with a reply)."""


USER_ERRORS = (UserFacingError, NotAllowed, ImageError, WorkerBusy, WorkerTimeout, DatasetError)


def user_message(error: BaseException) -> str | None:
    """The reply for an error the user can act on, or None for a bug."""
    if isinstance(error, USER_ERRORS):
        return str(error)
    if isinstance(error, WorkerClosed):
        return RESTARTING
    return None
