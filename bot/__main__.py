"""`python -m bot` (or `jedisith-bot`): start the bot with settings from the environment and `.env`.

Startup and shutdown live here. The model is loaded and warmed up before the bot connects;
every failure a person can fix ends with one line saying what to do and a non-zero exit code.
SIGINT and SIGTERM stop taking commands, finish those in flight and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import aiohttp
import discord

from bot.client import WORKER_GRACE, BotCore, make_bot
from bot.endpoints import discover_gateway, use_endpoints
from bot.model_versions import loader_for, serving_folder
from bot.settings import Settings, SettingsError
from dataset import DatasetStore
from dataset.database import display_url, hide_password
from model.bundle import ModelError
from model.heap import map_large_blocks
from model.preprocess import DECODE_MEMORY, ImageLimits
from model.worker import ModelWorker

log = logging.getLogger("bot")

EXIT_CONFIG = 2
EXIT_RUNTIME = 1
CLOSE_INVALID_SHARD = 4010  # the gateway's close codes for a shard it refuses
CLOSE_SHARDING_REQUIRED = 4011


class StartupError(RuntimeError):
    """A failure at startup that one line can explain."""


def load_settings(env_file: Path | None, overrides: dict[str, str] | None = None) -> Settings:
    """Settings from `.env` (if present) overridden by the real environment."""
    return Settings.from_environment(env_file, overrides)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("discord").setLevel(max(logging.getLevelName(level), logging.INFO))
    logging.getLogger("discord.http").setLevel(logging.WARNING)
    # The bot has no voice features: discord.py's warnings about voice libraries are noise.
    logging.getLogger("discord.client").addFilter(
        lambda record: "voice will NOT be supported" not in record.getMessage()
    )


def make_worker(settings: Settings) -> ModelWorker:
    folder = serving_folder(settings.model_path, settings.data_dir)
    return ModelWorker(
        loader_for(folder, settings.model_backend),
        max_batch=settings.batch_size,
        max_wait=settings.batch_wait_ms / 1000,
        queue_size=settings.queue_size,
        limits=ImageLimits(
            settings.max_image_bytes, settings.max_image_pixels, settings.max_decoded_bytes
        ),
        watch=folder,
        reload_interval=settings.reload_interval,
    )


def open_dataset(settings: Settings) -> DatasetStore:
    """The labelled-image store in DATA_DIR (or DATABASE_URL), migrated to this version."""
    url = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        return DatasetStore.open(settings.data_dir, url or None)
    except Exception as error:  # SQLAlchemy, Alembic and OS errors alike: one line
        where = display_url(url) if url else settings.data_dir
        reason = hide_password(
            (str(error).splitlines() or [repr(error)])[0][:300], url
        )  # the URL's password too
        raise StartupError(
            f"cannot open the dataset at {where}: {reason}. "
            "Set DATA_DIR to a folder the bot can write, or DATABASE_URL to a reachable database."
        ) from None


def honesty_summary(classifier, policy: str) -> str:
    """What the start-up log says of the detector and the calibration."""
    if classifier.detector is None:
        return "no out-of-distribution detector: every image gets a verdict"
    temperature = classifier.calibration.temperature if classifier.calibration else 1.0
    return (
        f"unlike images: {policy} (threshold {classifier.detector.threshold:.2f}), "
        f"calibration temperature {temperature:.3f}"
    )


async def run(settings: Settings) -> None:
    """Run until closed by a signal or Discord; raises `StartupError` for fixable failures."""
    signals = _Signals()
    DECODE_MEMORY.limit = settings.decode_memory
    worker = make_worker(settings)
    log.info("loading the model from %s (%s backend)", worker.folder, settings.model_backend)
    try:
        classifier = await asyncio.to_thread(worker.start)
    except (ModelError, ValueError) as error:
        fix = (
            ""  # the message already says what to install
            if "pip install" in str(error)
            else " Set MODEL_PATH to a folder made by jedisith-train, or unset it to use the "
            "shipped model."
        )
        raise StartupError(
            f"cannot load the model at {settings.model_path}: {error}.{fix}"
        ) from None
    log.info(
        "model %s loaded (%s backend, classes %s; %s)",
        worker.folder,
        classifier.backend_name,
        "/".join(classifier.info.class_names),
        honesty_summary(classifier, settings.ood_policy),
    )
    try:
        async with aiohttp.ClientSession() as session:
            gateway = settings.gateway_url
            if settings.api_url and not gateway:
                try:
                    gateway = await discover_gateway(session, settings.api_url)
                except aiohttp.ClientConnectionError as error:
                    raise StartupError(f"cannot reach {settings.api_url}: {error}") from None
                except (aiohttp.ClientError, KeyError, ValueError) as error:
                    raise StartupError(
                        f"{settings.api_url}/gateway did not name a gateway ({error}); "
                        "set DISCORD_GATEWAY_URL"
                    ) from None
            use_endpoints(settings.api_url, gateway)
            dataset = await asyncio.to_thread(open_dataset, settings)
            try:
                async with make_bot(settings, worker, session, dataset) as bot:
                    signals.bot = bot
                    await _start(bot, settings)
            finally:
                dataset.close()
    finally:
        await worker.aclose(timeout=WORKER_GRACE)


async def _start(bot: BotCore, settings: Settings) -> None:
    if not settings.message_content:
        log.warning(
            "MESSAGE_CONTENT=false: starting without the Message Content intent, so the %s "
            "commands work only in DMs; slash commands, the menu and @mentions of the bot work",
            settings.command_prefix,
        )
    try:
        await bot.start(settings.token.get_secret_value())
    except discord.LoginFailure:
        raise StartupError(
            "Discord refused the token: check DISCORD_TOKEN (Developer Portal > your "
            "application > Bot > Reset Token)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise StartupError(
            "the Message Content intent is off: enable it in the Developer Portal > your "
            "application > Bot > Privileged Gateway Intents, or set MESSAGE_CONTENT=false "
            "(no ! commands in servers), then start again"
        ) from None
    except (aiohttp.ClientConnectorError, discord.GatewayNotFound, OSError) as error:
        target = settings.api_url or "Discord"
        raise StartupError(f"cannot reach {target}: {error}") from None
    except discord.ConnectionClosed as error:
        refused = _refused_shard(error, settings)
        if refused is None:
            raise
        raise refused from None


def _refused_shard(error: discord.ConnectionClosed, settings: Settings) -> StartupError | None:
    """The gateway's refusals of a shard (close codes 4010 and 4011) as one line."""
    if error.code == CLOSE_SHARDING_REQUIRED:
        if not settings.sharded:
            return StartupError(
                "Discord requires sharding for this many servers: set SHARD_COUNT=auto (or a "
                'number of shards), see docs/running.md, "Running a cluster"'
            )
        return StartupError(
            f"Discord refused shard {error.shard_id} of SHARD_COUNT={settings.shard_count}: "
            "it would hold too many servers (4011, sharding required); set SHARD_COUNT=auto "
            "or a larger number, the same in every process"
        )
    if error.code == CLOSE_INVALID_SHARD:
        return StartupError(
            f"Discord refused shard {error.shard_id} of SHARD_COUNT={settings.shard_count} "
            "(4010, invalid shard): SHARD_IDS must be below SHARD_COUNT"
        )
    return None


class _Signals:
    """SIGINT and SIGTERM: while starting, stop at once; once the bot runs, shut it down cleanly."""

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self.bot: BotCore | None = None
        self._shutdown: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                loop.add_signal_handler(sig, self._received, sig)

    def _received(self, sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        if self.bot is None:
            if self._task is not None:
                self._task.cancel()  # still loading the model: nothing to finish
        elif self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(self.bot.shutdown())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jedisith-bot", description=__doc__.split("\n")[0])
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="default: .env")
    parser.add_argument(
        "--sync", action="store_true", help="register the slash commands with Discord at start"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    map_large_blocks()  # freed decodes go back to the system (model.heap)
    try:
        settings = load_settings(args.env_file, {"SYNC_COMMANDS": "1"} if args.sync else None)
    except SettingsError as error:
        print(f"jedisith-bot: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    try:
        asyncio.run(run(settings))
    except StartupError as error:
        print(f"jedisith-bot: {error}", file=sys.stderr)
        return EXIT_RUNTIME
    except (KeyboardInterrupt, asyncio.CancelledError):  # a signal before the bot started
        pass
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
