"""The bot's settings: one frozen object built at startup from the environment and `.env`.

`Settings` is a pydantic-settings model: every field is typed and carries its constraints, so a
value read from the environment arrives as the type its field declares (or is refused), whatever
the field. Each field's variable is its alias: its name in capitals, or `DISCORD_*`. Three ways
to build one:

- `Settings(token=..., cooldown_rate=0, ...)`: Python values, nothing else is read. Tests and
  benchmarks build settings this way, without a fake environment.
- `Settings.from_env(mapping)`: environment-style strings (`DISCORD_TOKEN`, `COOLDOWN_RATE`...).
- `Settings.from_environment(env_file)`: the real environment over `.env`, as `python -m bot` does.

Nothing reads the environment at import time. Every key is documented in `.env.example`. A bad
value raises `SettingsError` with one line naming the variable (`COOLDOWN_RATE='x' is not valid:
expected a whole number`). The token is a `SecretStr`: it is left out of `repr()` and logs, and
only `settings.token.get_secret_value()` gives it. `DATABASE_URL` (its password) is one too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasGenerator,
    BeforeValidator,
    Field,
    PlainValidator,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.replies import OOD_POLICIES
from bot.shards import AUTO, parse_shard_count, parse_shard_ids, shard_ranges
from model.bundle import DEFAULT_MODEL_DIR
from model.preprocess import (
    DEFAULT_DECODE_MEMORY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DECODED_BYTES,
    DEFAULT_MAX_PIXELS,
)
from model.runtime import BACKENDS

MISSING_TOKEN = (
    "DISCORD_TOKEN is not set. Put your bot's token in .env "
    "(copy .env.example), or run `make run` without one to try the local playground."
)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what to do."""


def _one_of(choices: Iterable[str], normalise: Callable[[str], str] = str) -> AfterValidator:
    choices = tuple(choices)

    def check(value: str) -> str:
        value = normalise(value)
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return AfterValidator(check)


def _log_level(value: str) -> str:
    value = value.upper()
    if not isinstance(logging.getLevelName(value), int):  # "Level LOUD" for unknown names
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return value


def _ids(value: object) -> object:
    if isinstance(value, str):  # "123, 456,789," from the environment
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _token(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("empty")  # reported as MISSING_TOKEN, like a missing one
    return value


Positive = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
# The worker thread dies on a negative, infinite or NaN wait, and spins on a zero one.
NonNegativeFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """Every setting, typed and checked; see `.env.example` for what each one does."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",  # a misspelt keyword is an error, as it was for the dataclass
        populate_by_name=True,  # `Settings(token=...)` as well as the variable names
        protected_namespaces=(),  # model_path, model_backend are ours, not pydantic's
        # Each field's environment variable: its name in capitals, unless it names another.
        alias_generator=AliasGenerator(validation_alias=str.upper),
        case_sensitive=True,
        enable_decoding=False,  # ALLOWED_CHANNEL_IDS, OPERATOR_IDS, SHARD_IDS: lists, not JSON
    )

    token: Annotated[SecretStr, AfterValidator(_token)] = Field(
        validation_alias="DISCORD_TOKEN", repr=False
    )
    command_prefix: str = Field("!", min_length=1)
    model_path: Annotated[Path, AfterValidator(Path.expanduser)] = DEFAULT_MODEL_DIR
    model_backend: Annotated[str, _one_of(BACKENDS)] = "auto"
    api_url: str | None = Field(None, validation_alias="DISCORD_API_URL")
    gateway_url: str | None = Field(None, validation_alias="DISCORD_GATEWAY_URL")
    max_image_bytes: Positive = DEFAULT_MAX_BYTES
    max_image_pixels: Positive = DEFAULT_MAX_PIXELS
    max_decoded_bytes: Positive = DEFAULT_MAX_DECODED_BYTES
    decode_memory: Positive = DEFAULT_DECODE_MEMORY
    max_images: Positive = 10
    max_bytes_in_flight: Positive = 64 * 1024 * 1024
    recent_image_bytes: Positive = 32 * 1024 * 1024  # judged images kept for the vote buttons
    store_threads: Positive = 2
    queue_size: Positive = 256
    batch_size: Positive = 8
    batch_wait_ms: NonNegativeFinite = 5.0
    cooldown_rate: NonNegative = 3
    cooldown_seconds: NonNegativeFinite = 10.0
    # Every command and click, per member and per server, in each window (bot.limits); 0: none.
    rate_limit_member: NonNegative = 5
    rate_limit_server: NonNegative = 60
    rate_limit_seconds: Seconds = 10.0
    uncertain_band: Annotated[float, Field(ge=0, lt=0.5, allow_inf_nan=False)] = 0.1
    ood_policy: Annotated[str, _one_of(OOD_POLICIES, str.lower)] = "refuse"
    # With collection on, the bot asks for a label (bot.asking) on one verdict in ASK_EVERY at
    # most, and ASK_PER_HOUR times an hour at most in a channel; 0: never. Servers may differ.
    ask_every: NonNegative = 5
    ask_per_hour: NonNegative = 3
    # A held-out image judges a server's new models only when its label has the votes of this
    # many members there, or a moderator's (docs/surely-better.md). Servers may differ.
    holdout_min_voters: Annotated[int, Field(ge=1, le=20)] = 2
    history_limit: NonNegative = 25
    download_timeout: Seconds = 15.0
    # Verdicts and !features ask Discord's media proxy for large images at the size the network
    # needs (bot.images.resized_request); false: always the original.
    resized_downloads: bool = True
    # Verdicts as cards (Components V2 layouts, bot.cards); false: the plain text of bot.replies.
    verdict_cards: bool = True
    reload_interval: Seconds = 2.0
    allowed_channel_ids: Annotated[frozenset[int], BeforeValidator(_ids)] = frozenset()
    # Users who govern the shared model besides the application's owner (or team).
    operator_ids: Annotated[frozenset[int], BeforeValidator(_ids)] = frozenset()
    # False: start without the privileged Message Content intent (no ! commands in servers).
    message_content: bool = True
    sync_commands: bool = False  # pydantic's words: true/false, yes/no, on/off, 1/0...
    data_dir: Annotated[Path, AfterValidator(Path.expanduser)] = Path("data/bot")
    # A secret like the token (its password): masked in repr(), given by get_secret_value().
    database_url: SecretStr | None = None
    base_data_dir: Annotated[Path, AfterValidator(Path.expanduser)] | None = None
    # The operator's holdout (jedi/, sith/) that judges `!retrain shared`; None: the shared labels'.
    default_holdout_dir: Annotated[Path, AfterValidator(Path.expanduser)] | None = None
    retrain_min_images: Annotated[int, Field(ge=5)] = 20  # a validation split needs a few
    retrain_max_epochs: Positive = 100
    max_trainings: Positive = 1  # full trainings run at once across the cluster; others queue
    head_cache_mb: Positive = 64  # servers' loaded heads held in memory (bot.server_models)
    server_model_versions: Positive = 5  # versions of a server's model kept (bot.server_models)
    server_networks_cached: Positive = 2  # servers' own networks held loaded (bot.server_models)
    server_network_min_images: Positive = 200  # a server's images for `!retrain network`
    # The images one server may hold, and their megabytes (dataset.quotas).
    server_image_quota: Positive = 5000
    server_image_quota_mb: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 200.0
    # What one member (in every server) and one server may add in a day, UTC (dataset.quotas).
    member_images_per_day: Positive = 100
    member_mb_per_day: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 25.0
    server_images_per_day: Positive = 500
    server_mb_per_day: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 100.0
    log_level: Annotated[str, AfterValidator(_log_level)] = "INFO"
    # None: one gateway connection (no sharding); "auto": the count Discord recommends.
    shard_count: Annotated[int | Literal["auto"] | None, PlainValidator(parse_shard_count)] = None
    # None: every shard of shard_count; else the shards this process runs, sorted.
    shard_ids: Annotated[tuple[int, ...] | None, PlainValidator(parse_shard_ids)] = None

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise SettingsError(_one_line(error, values)) from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"settings are frozen: {name} cannot be changed")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"settings are frozen: {name} cannot be deleted")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """`Settings(...)` takes only what it is given: the environment is read on request."""
        return (init_settings,)

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Each field's environment variable (its alias)."""
        return {name: str(field.validation_alias) for name, field in cls.model_fields.items()}

    @classmethod
    def from_env(cls, env: Mapping[str, str | None]) -> Settings:
        """Build settings from environment-style strings (`DISCORD_TOKEN`, `COMMAND_PREFIX`...),
        read by pydantic-settings' environment source: values stripped, a blank one meaning the
        default, other keys (field names in lower case too) ignored."""
        names = set(cls.env_names().values())
        source = EnvSettingsSource(cls)
        source.env_vars = {
            key: value.strip()
            for key, value in env.items()
            if key in names and (value or "").strip()
        }
        return cls(**source())

    @classmethod
    def from_environment(
        cls, env_file: Path | None = Path(".env"), overrides: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from `env_file` (if present) overridden by the real environment, then
        `overrides`. A blank value anywhere means the default."""
        values: dict[str, str | None] = {}
        if env_file is not None:
            values.update(DotEnvSettingsSource(cls, env_file=env_file).env_vars)
        values.update(os.environ)
        values.update(overrides or {})
        return cls.from_env(values)

    @property
    def cooldown_enabled(self) -> bool:
        return self.cooldown_rate > 0 and self.cooldown_seconds > 0

    @property
    def sharded(self) -> bool:
        """Whether the bot runs as `AutoShardedBot` (SHARD_COUNT set), not one connection."""
        return self.shard_count is not None

    @model_validator(mode="after")
    def _shards_fit_the_count(self) -> Settings:
        if self.shard_ids is None:
            return self
        ids = shard_ranges(self.shard_ids)
        if self.shard_count is None:
            raise ValueError(
                f"SHARD_IDS={ids} needs SHARD_COUNT, the number of shards of the whole bot"
            )
        if self.shard_count == AUTO:
            raise ValueError(
                f"SHARD_IDS={ids} needs a number for SHARD_COUNT, not auto: every process must "
                "use the same count (python -m bot.cluster asks Discord once for all of them)"
            )
        if self.shard_ids[-1] >= self.shard_count:
            raise ValueError(
                f"SHARD_IDS={ids} is not valid: shards are numbered 0 to "
                f"{self.shard_count - 1} with SHARD_COUNT={self.shard_count}"
            )
        return self


_REASONS = {
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_type": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "finite_number": "expected a finite number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_too_short": "must not be empty",
    "string_type": "expected text",
    "extra_forbidden": "there is no such setting",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be above {gt}",
    "less_than": "must be below {lt}",
    "less_than_equal": "must be at most {le}",
}


def _one_line(error: ValidationError, values: Mapping[str, Any]) -> str:
    """The problems of `error` as one line: `KEY='raw' is not valid: reason`; a missing or bad
    token first and alone, never echoing it."""
    names = Settings.env_names()
    fields_by_key = {**{env: name for name, env in names.items()}, **{name: name for name in names}}
    items = [(str(item["loc"][0]) if item["loc"] else "", item) for item in error.errors()]
    if any(fields_by_key.get(given) == "token" for given, _ in items):
        return MISSING_TOKEN
    problems = []
    for given, item in items:
        if not item["loc"]:  # a check of several settings together: its message says it all
            problems.append(_reason(item))
            continue
        name = fields_by_key.get(given)
        key = names[name] if name else given
        raw = next((values[k] for k in (name, key) if k in values), item["input"])
        reason = _reason(item)
        if len(item["loc"]) > 1:  # one item of a list: say which
            reason += f", not {item['input']!r}"
        problems.append(f"{key}={raw!r} is not valid: {reason}")
    return "; ".join(problems)


def _reason(item: Any) -> str:
    context = {k: f"{v:g}" if isinstance(v, float) else v for k, v in item.get("ctx", {}).items()}
    if item["type"] == "value_error":  # raised by our validators: the message is the reason
        return str(context.get("error", item["msg"]))
    template = _REASONS.get(item["type"])
    if template is None:
        return item["msg"][:1].lower() + item["msg"][1:]
    return template.format(**context)
