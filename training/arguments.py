"""The help of the training command lines: every option shows its default."""

from __future__ import annotations

import argparse
import copy
from typing import Any


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's formatter that adds "(default: ...)" to every option with a default, those
    without a help line included, and not twice where the help already names it."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and _has_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "(default" in text or not _has_default(action):
            return text
        return f"{text} (default: %(default)s)"


def _has_default(action: argparse.Action) -> bool:
    """An option whose default means something to show (not a flag, not None, not a positional)."""
    if not action.option_strings or isinstance(action, argparse._HelpAction):
        return False
    return action.default not in (None, False, "", argparse.SUPPRESS)


class Parser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose help shows every default (`DefaultsHelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
