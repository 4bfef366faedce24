"""The bot's settings: one frozen object built at startup from the environment and `.env`.

Nothing reads the environment at import time, so tests build `Settings(...)` directly. Every key
is documented in `.env.example`. The token is a secret: it is left out of `repr()` and logs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from bot._replies import OOD_POLICIES
from model.bundle import DEFAULT_MODEL_DIR
from model.preprocess import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from model.runtime import BACKENDS


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what to do."""


@dataclass(frozen=True)
class Settings:
    token: str = field(repr=False)
    command_prefix: str = "!"
    model_path: Path = DEFAULT_MODEL_DIR
    model_backend: str = "auto"
    api_url: str | None = None
    gateway_url: str | None = None
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 10
    queue_size: int = 256
    batch_size: int = 32
    batch_wait_ms: float = 5.0
    cooldown_rate: int = 3
    cooldown_seconds: float = 10.0
    uncertain_band: float = 0.1
    ood_policy: str = "refuse"
    history_limit: int = 25
    download_timeout: float = 15.0
    reload_interval: float = 2.0
    allowed_channel_ids: frozenset[int] = frozenset()
    sync_commands: bool = False
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.token:
            raise SettingsError(
                "DISCORD_TOKEN is not set. Put your bot's token in .env "
                "(copy .env.example), or run `make run` without one to try the local playground."
            )
        if self.model_backend not in BACKENDS:
            raise SettingsError(f"MODEL_BACKEND must be one of {', '.join(BACKENDS)}")
        if not self.command_prefix:
            raise SettingsError("COMMAND_PREFIX must not be empty")
        if not 0.0 <= self.uncertain_band < 0.5:
            raise SettingsError("UNCERTAIN_BAND must be at least 0 and below 0.5")
        if self.ood_policy not in OOD_POLICIES:
            raise SettingsError(f"OOD_POLICY must be one of {', '.join(OOD_POLICIES)}")
        positive = ("max_image_bytes", "max_image_pixels", "max_images", "queue_size", "batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be at least 1")
        # The worker thread dies on a negative or infinite wait, and spins on a zero one.
        for name in ("batch_wait_ms", "cooldown_rate", "cooldown_seconds", "history_limit"):
            if not 0 <= getattr(self, name) < math.inf:  # NaN fails too
                raise SettingsError(f"{name.upper()} must be a number, 0 or more")
        for name in ("download_timeout", "reload_interval"):
            if not 0 < getattr(self, name) < math.inf:
                raise SettingsError(f"{name.upper()} must be a number of seconds above 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from environment-style strings (`DISCORD_TOKEN`, `COMMAND_PREFIX`...)."""
        values: dict[str, object] = {}
        for item in fields(cls):
            key = "DISCORD_TOKEN" if item.name == "token" else item.name.upper()
            if item.name == "api_url":
                key = "DISCORD_API_URL"
            elif item.name == "gateway_url":
                key = "DISCORD_GATEWAY_URL"
            raw = env.get(key, "").strip()
            if not raw:
                continue
            values[item.name] = _parse(key, item.name, raw)
        values.setdefault("token", "")
        return cls(**values)  # type: ignore[arg-type]

    @property
    def cooldown_enabled(self) -> bool:
        return self.cooldown_rate > 0 and self.cooldown_seconds > 0


def _parse(key: str, name: str, raw: str) -> object:
    try:
        if name in ("model_path",):
            return Path(raw).expanduser()
        if name in (
            "max_image_bytes",
            "max_image_pixels",
            "max_images",
            "queue_size",
            "batch_size",
            "cooldown_rate",
            "history_limit",
        ):
            return int(raw)
        if name in (
            "batch_wait_ms",
            "cooldown_seconds",
            "uncertain_band",
            "download_timeout",
            "reload_interval",
        ):
            return float(raw)
        if name == "allowed_channel_ids":
            return frozenset(int(part) for part in raw.replace(" ", "").split(",") if part)
        if name == "sync_commands":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if name == "ood_policy":
            return raw.lower()
        if name == "log_level":
            if logging.getLevelName(raw.upper()) == f"Level {raw.upper()}":
                raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
            return raw.upper()
    except ValueError as error:
        raise SettingsError(f"{key}={raw!r} is not valid: {error}") from None
    return raw
