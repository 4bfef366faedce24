"""Errors answered the way Discord answers them: ``{"message", "code"[, "errors"]}``."""

from __future__ import annotations

from typing import Any


class DiscordError(Exception):
    """An error with Discord's HTTP status, JSON error code and message."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


FieldError = tuple[str, str, str]  # (dotted path, code, message)


def form_error(path: str, code: str, message: str) -> DiscordError:
    """A 400 'Invalid Form Body' error (code 50035) for one field, dotted path allowed."""
    return form_errors([(path, code, message)])


def form_errors(problems: list[FieldError]) -> DiscordError:
    """A 400 'Invalid Form Body' (50035) naming every field in ``problems``, in one tree:
    ``{"components": {"0": {"components": {"1": {"custom_id": {"_errors": [...]}}}}}}``."""
    errors: dict[str, Any] = {}
    for path, code, message in problems:
        node = errors
        for key in path.split("."):
            node = node.setdefault(key, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def unknown(what: str, code: int) -> DiscordError:
    """A 404 ``Unknown <what>`` (e.g. Message 10008, Channel 10003, Guild 10004)."""
    return DiscordError(404, code, f"Unknown {what}")


def empty_message() -> DiscordError:
    return DiscordError(400, 50006, "Cannot send an empty message")
