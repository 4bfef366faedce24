"""Settings.from_env: parsing, defaults, types, and one clear error per bad value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.settings import Settings, SettingsError
from model.bundle import DEFAULT_MODEL_DIR
from model.preprocess import ImageLimits

TOKEN = "MTIz.secret-token-value.XYZ"


def env(**values: str) -> dict[str, str]:
    return {"DISCORD_TOKEN": TOKEN, **values}


def test_defaults_from_a_token_alone() -> None:
    """The defaults that are facts of other modules come from them (the rest: .env.example)."""
    settings = Settings.from_env(env())
    assert settings.token.get_secret_value() == TOKEN
    assert settings.model_path == DEFAULT_MODEL_DIR  # the shipped model
    assert settings.api_url is None and settings.gateway_url is None  # Discord itself
    assert settings.max_image_bytes == ImageLimits().max_bytes
    assert settings.max_image_pixels == ImageLimits().max_pixels
    assert settings.cooldown_enabled
    assert settings.allowed_channel_ids == frozenset()  # every channel
    assert settings.sync_commands is False


def test_every_key_is_parsed(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env(
            COMMAND_PREFIX="?",
            MODEL_PATH=str(tmp_path / "model"),
            MODEL_BACKEND="litert",
            DISCORD_API_URL="http://127.0.0.1:9/api/v10",
            DISCORD_GATEWAY_URL="ws://127.0.0.1:9/gateway",
            MAX_IMAGE_BYTES="2048",
            MAX_IMAGE_PIXELS="1000000",
            MAX_IMAGES="3",
            QUEUE_SIZE="8",
            BATCH_SIZE="4",
            BATCH_WAIT_MS="2.5",
            COOLDOWN_RATE="1",
            COOLDOWN_SECONDS="60",
            UNCERTAIN_BAND="0.25",
            OOD_POLICY="Warn",
            HISTORY_LIMIT="0",
            DOWNLOAD_TIMEOUT="3",
            RELOAD_INTERVAL="0.5",
            ALLOWED_CHANNEL_IDS=" 123, 456 ,789,",
            SYNC_COMMANDS="yes",
            LOG_LEVEL="debug",
        )
    )
    assert settings.command_prefix == "?"
    assert settings.model_path == tmp_path / "model"
    assert settings.model_backend == "litert"
    assert settings.api_url == "http://127.0.0.1:9/api/v10"
    assert settings.gateway_url == "ws://127.0.0.1:9/gateway"
    assert settings.max_image_bytes == 2048
    assert settings.max_image_pixels == 1_000_000
    assert settings.max_images == 3
    assert settings.queue_size == 8
    assert settings.batch_size == 4
    assert settings.batch_wait_ms == 2.5
    assert (settings.cooldown_rate, settings.cooldown_seconds) == (1, 60.0)
    assert settings.uncertain_band == 0.25
    assert settings.ood_policy == "warn"
    assert settings.history_limit == 0
    assert settings.download_timeout == 3.0
    assert settings.reload_interval == 0.5
    assert settings.allowed_channel_ids == frozenset({123, 456, 789})
    assert settings.sync_commands is True
    assert settings.log_level == "DEBUG"
    assert logging.getLevelName(settings.log_level) == logging.DEBUG


def test_model_path_expands_the_home_folder() -> None:
    settings = Settings.from_env(env(MODEL_PATH="~/models/jedisith"))
    assert settings.model_path == Path.home() / "models" / "jedisith"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("ON", True),
        ("0", False),
        ("no", False),
        ("Off", False),
        (" Yes ", True),
        ("y", True),  # pydantic's words too
        ("f", False),
    ],
)
def test_sync_commands_words(raw: str, expected: bool) -> None:
    assert Settings.from_env(env(SYNC_COMMANDS=raw)).sync_commands is expected


def test_only_the_variables_are_read_as_written() -> None:
    """Neither another case nor a field's own name: `token`, `max_images` are not variables."""
    settings = Settings.from_env(env(max_images="3", Queue_Size="9", discord_token="other"))
    assert (settings.max_images, settings.queue_size) == (10, 256)
    assert settings.token.get_secret_value() == TOKEN
    with pytest.raises(SettingsError, match="DISCORD_TOKEN"):
        Settings.from_env({"token": TOKEN, "TOKEN": TOKEN})


def test_empty_and_blank_values_mean_the_default() -> None:
    settings = Settings.from_env(env(COMMAND_PREFIX="   ", MAX_IMAGES="", MODEL_PATH=" "))
    assert settings.command_prefix == "!"
    assert settings.max_images == 10
    assert settings.model_path == DEFAULT_MODEL_DIR


def test_values_are_stripped() -> None:
    settings = Settings.from_env(env(MAX_IMAGES=" 4 ", MODEL_BACKEND=" tensorflow\n"))
    assert settings.max_images == 4
    assert settings.model_backend == "tensorflow"


def test_zero_cooldown_disables_it() -> None:
    assert not Settings.from_env(env(COOLDOWN_RATE="0")).cooldown_enabled
    assert not Settings.from_env(env(COOLDOWN_SECONDS="0")).cooldown_enabled


def test_unknown_keys_are_ignored() -> None:
    settings = Settings.from_env(env(PATH="/usr/bin", HOME="/root", TOKEN="other"))
    assert settings.token.get_secret_value() == TOKEN


BAD_VALUES = [
    ("MAX_IMAGE_BYTES", "ten"),
    ("MAX_IMAGE_BYTES", "0"),
    ("MAX_IMAGE_BYTES", "1.5"),
    ("MAX_IMAGE_PIXELS", "-1"),
    ("MAX_IMAGES", "0"),
    ("MAX_IMAGES", "many"),
    ("QUEUE_SIZE", "0"),
    ("BATCH_SIZE", "0"),
    ("BATCH_SIZE", "x"),
    ("BATCH_WAIT_MS", "soon"),
    ("BATCH_WAIT_MS", "-1"),
    ("COOLDOWN_RATE", "1.5"),
    ("COOLDOWN_RATE", "-1"),
    ("COOLDOWN_SECONDS", "a minute"),
    ("COOLDOWN_SECONDS", "-5"),
    ("UNCERTAIN_BAND", "0.5"),
    ("UNCERTAIN_BAND", "-0.1"),
    ("UNCERTAIN_BAND", "wide"),
    ("HISTORY_LIMIT", "all"),
    ("HISTORY_LIMIT", "-1"),
    ("DOWNLOAD_TIMEOUT", "0"),
    ("DOWNLOAD_TIMEOUT", "-3"),
    ("DOWNLOAD_TIMEOUT", "nan"),
    ("RELOAD_INTERVAL", "0"),
    ("RELOAD_INTERVAL", "-1"),
    ("RELOAD_INTERVAL", "inf"),
    ("ALLOWED_CHANNEL_IDS", "123,general"),
    ("SYNC_COMMANDS", "maybe"),
    ("LOG_LEVEL", "LOUD"),
    ("MODEL_BACKEND", "onnx"),
    ("OOD_POLICY", "ignore"),
]


@pytest.mark.parametrize(("key", "raw"), BAD_VALUES)
def test_a_bad_value_names_its_key(key: str, raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(**{key: raw}))
    message = str(caught.value)
    assert key in message
    assert TOKEN not in message
    assert "\n" not in message


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_missing_token_says_what_to_do() -> None:
    for values in ({}, {"DISCORD_TOKEN": ""}, {"DISCORD_TOKEN": "   "}):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env(values)
        message = str(caught.value)
        assert "DISCORD_TOKEN" in message
        assert ".env" in message
        assert "\n" not in message


def test_missing_token_is_reported_before_other_bad_values() -> None:
    with pytest.raises(SettingsError, match="DISCORD_TOKEN"):
        Settings.from_env({"MAX_IMAGES": "0"})


def test_the_token_stays_out_of_repr_and_str() -> None:
    settings = Settings.from_env(env(COMMAND_PREFIX="?"))
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert "token" not in repr(settings).lower()
    assert "command_prefix='?'" in repr(settings)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(env())
    with pytest.raises(AttributeError):
        settings.token = "other"  # type: ignore[misc]


def test_settings_can_be_built_directly() -> None:
    settings = Settings(token=TOKEN, cooldown_rate=0)
    assert not settings.cooldown_enabled
    with pytest.raises(SettingsError, match="MAX_IMAGES"):
        Settings(token=TOKEN, max_images=0)
    assert Settings(DISCORD_TOKEN=TOKEN, MAX_IMAGES=3).max_images == 3  # the variables' names


def test_zero_is_fine_where_it_means_off_or_at_once() -> None:
    settings = Settings.from_env(
        env(BATCH_WAIT_MS="0", HISTORY_LIMIT="0", COOLDOWN_RATE="0", UNCERTAIN_BAND="0")
    )
    assert settings.batch_wait_ms == 0 and settings.history_limit == 0
    assert settings.uncertain_band == 0 and not settings.cooldown_enabled


def numeric_fields(kind: type) -> list[str]:
    return [name for name, field in Settings.model_fields.items() if field.annotation is kind]


def test_numbers_from_the_environment_come_back_as_numbers() -> None:
    """Every int and float field, whatever it is, is converted: none stays a string."""
    ints, floats = numeric_fields(int), numeric_fields(float)
    assert {"cooldown_rate", "max_images", "history_limit"} <= set(ints)
    assert {"cooldown_seconds", "batch_wait_ms", "uncertain_band"} <= set(floats)
    names = Settings.env_names()
    values = {names[name]: "7" for name in ints} | {names[name]: "0.25" for name in floats}
    settings = Settings.from_env(env(**values))
    for name in ints:
        assert type(getattr(settings, name)) is int and getattr(settings, name) == 7, name
    for name in floats:
        assert type(getattr(settings, name)) is float and getattr(settings, name) == 0.25, name


def test_every_default_read_back_from_the_environment_keeps_its_type() -> None:
    names = Settings.env_names()
    defaults = Settings(token=TOKEN)
    for name, field in Settings.model_fields.items():
        if name == "token" or field.default in (None, frozenset()):
            continue
        settings = Settings.from_env(env(**{names[name]: str(field.default)}))
        value = getattr(settings, name)
        assert value == getattr(defaults, name) and type(value) is type(field.default), name


def test_direct_values_are_checked_and_converted_like_the_environment() -> None:
    settings = Settings(token=TOKEN, model_path="models/x", allowed_channel_ids=[1, 2])  # type: ignore[arg-type]
    assert settings.model_path == Path("models/x")
    assert settings.allowed_channel_ids == frozenset({1, 2})
    with pytest.raises(
        SettingsError, match=r"^COOLDOWN_RATE='x' is not valid: expected a whole number$"
    ):
        Settings(token=TOKEN, cooldown_rate="x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("COOLDOWN_RATE", "x", "COOLDOWN_RATE='x' is not valid: expected a whole number"),
        ("MAX_IMAGES", "0", "MAX_IMAGES='0' is not valid: must be at least 1"),
        ("BATCH_WAIT_MS", "-1", "BATCH_WAIT_MS='-1' is not valid: must be at least 0"),
        ("RELOAD_INTERVAL", "inf", "RELOAD_INTERVAL='inf' is not valid: expected a finite number"),
        ("UNCERTAIN_BAND", "0.5", "UNCERTAIN_BAND='0.5' is not valid: must be below 0.5"),
        ("SYNC_COMMANDS", "maybe", "SYNC_COMMANDS='maybe' is not valid: expected true or false"),
        (
            "ALLOWED_CHANNEL_IDS",
            "123,general",
            "ALLOWED_CHANNEL_IDS='123,general' is not valid: "
            "expected a whole number, not 'general'",
        ),
        (
            "OOD_POLICY",
            "ignore",
            "OOD_POLICY='ignore' is not valid: expected one of refuse, warn, off",
        ),
    ],
)
def test_error_messages_read_well(key: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env(**{key: raw}))
    assert str(caught.value) == message


def test_the_token_is_a_secret_everywhere() -> None:
    for settings in (Settings.from_env(env()), Settings(token=TOKEN)):
        assert isinstance(settings.token, SecretStr)
        assert settings.token.get_secret_value() == TOKEN
        for shown in (repr(settings), str(settings), repr(settings.token), str(settings.token)):
            assert TOKEN not in shown
        assert TOKEN not in str(settings.model_dump())


def test_a_bad_token_value_is_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings(token=" " * 3, max_images=0)
    assert "DISCORD_TOKEN" in str(caught.value)


def test_from_environment_reads_env_file_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-file\nMAX_IMAGES=3\nQUEUE_SIZE=9\nHISTORY_LIMIT=4\n")
    monkeypatch.setenv("QUEUE_SIZE", "12")
    monkeypatch.setenv("HISTORY_LIMIT", "")  # blank: the default, as if unset everywhere
    monkeypatch.setenv("API_URL", "http://elsewhere")  # not one of ours: ignored
    settings = Settings.from_environment(env_file, {"MAX_IMAGES": "5"})
    assert settings.token.get_secret_value() == "from-file"
    assert (settings.max_images, settings.queue_size, settings.history_limit) == (5, 12, 25)
    assert settings.api_url is None
    monkeypatch.setenv("DISCORD_TOKEN", "from-env")
    assert Settings.from_environment(tmp_path / "absent.env").token.get_secret_value() == "from-env"


def test_direct_construction_reads_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("MAX_IMAGES=3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAX_IMAGES", "4")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    settings = Settings(token=TOKEN)
    assert (settings.max_images, settings.log_level) == (10, "INFO")
