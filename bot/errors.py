"""The errors a user can cause, shared by every feature, and the one line each is shown as.

Nothing the bot posts shows a host path: `scrub_paths` turns an absolute path into its last
part, in every error line (`user_message`) and in every reply a command sends (`ReplyContext`).
"""

from __future__ import annotations

import re
from typing import Any

from discord.ext import commands

from bot.replies import RESTARTING
from dataset import DatasetError
from model.preprocess import ImageError
from model.worker import WorkerBusy, WorkerClosed, WorkerTimeout

# An absolute path of two parts or more (POSIX, under ~, or Windows), as errors quote them; not
# a URL, a fraction, a relative path such as jedi/ or a command such as /features.
_PATH = re.compile(
    r"(?<![\w.:/\\~-])(?:~|[A-Za-z]:)?(?:[/\\][^\s/\\'\"`<>|:;,()\[\]{}]+){2,}[/\\]?"
)


def scrub_paths(text: str) -> str:
    """`text` with each absolute path replaced by its last part (`/srv/data/x.png` -> `x.png`)."""
    return _PATH.sub(lambda match: re.split(r"[/\\]", match.group().rstrip("/\\"))[-1], text)


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
    """The reply for an error the user can act on (without host paths), or None for a bug."""
    if isinstance(error, USER_ERRORS):
        return scrub_paths(str(error))
    if isinstance(error, WorkerClosed):
        return RESTARTING
    return None


class ReplyContext(commands.Context):
    """The context every command runs with: what it sends never shows a host path."""

    async def send(self, content: str | None = None, **kwargs: Any) -> Any:
        if isinstance(content, str):
            content = scrub_paths(content)
        return await super().send(content, **kwargs)
