"""Each server's own model: where its versions live, which one it is served, and a bounded cache
of the loaded heads every verdict path reads.

A server's model is a head on the shared network (`model.head`), published as numbered versions
in `DATA_DIR/models/servers/<guild_id>/` by `model.bundle`'s machinery (the last
`SERVER_MODEL_VERSIONS` kept, the current one never removed). `CURRENT` names the version served;
no `CURRENT`, or one that says `default`, means the server is served the default model, which
every DM and user install is served too: the default head the operator chose (`!default from`,
versions in `DATA_DIR/models/default/`, each a copy of a consenting server's head), or, when
there is none (`CURRENT` says `network`), the shared network's own verdict.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.bundle import (
    CURRENT_FILE,
    TFLITE_FILE,
    ModelError,
    publish,
    publish_stamp,
    read_info,
    set_current,
    staging_folder,
    versions,
    write_text_atomic,
)
from model.head import Head, HeadError, check_backbone, with_figures

log = logging.getLogger(__name__)

SERVERS_FOLDER = Path("models") / "servers"  # under DATA_DIR
DEFAULT_FOLDER = Path("models") / "default"  # under DATA_DIR: the default head's versions
DEFAULT = "default"  # what CURRENT says when a server went back to the default model
NETWORK = "network"  # what the default's CURRENT says when it is the network's own verdict
KEEP_SERVER_VERSIONS = 5  # the default of the setting SERVER_MODEL_VERSIONS, which callers pass
MB = 1024 * 1024


def server_images(store: Any, guild_id: int, holdout: bool | None) -> list[Any]:
    """The server's labelled images (`LabelledImage`s) of one split (None: both), from its own
    votes only: the one place the server models read the dataset."""
    return store.labelled(guild_id, holdout=holdout)


def server_folder(data_dir: Path, guild_id: int) -> Path:
    """Where the versions of `guild_id`'s model live."""
    return Path(data_dir) / SERVERS_FOLDER / str(int(guild_id))


def default_folder(data_dir: Path) -> Path:
    """Where the versions of the default head live (the operator's `!default from`)."""
    return Path(data_dir) / DEFAULT_FOLDER


def current_head_version(folder: Path) -> int | None:
    """The version of a server's head it is served; None: the default model."""
    try:
        named = (Path(folder) / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ModelError(f"cannot read {Path(folder) / CURRENT_FILE}: {error}") from None
    return int(named) if named.isdigit() else None


def publish_head(head: Head, folder: Path, keep: int = KEEP_SERVER_VERSIONS) -> int:
    """Publish `head` as the server's next version, made current; its number."""
    stamped = with_figures(head, created=datetime.now(UTC).isoformat(timespec="seconds"))
    with staging_folder(Path(folder) / "next") as staging:
        stamped.save(staging)
        publish(staging, folder, keep=keep)
    number = current_head_version(folder)
    assert number is not None
    return number


def serve_default(folder: Path) -> None:
    """The server is served the default model from now on; its versions stay for `!rollback N`."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(folder) / CURRENT_FILE, f"{DEFAULT}\n")


def serve_network(folder: Path) -> None:
    """The default folder: no default head from now on, the network's own verdict is served;
    its versions stay for `!rollback shared head N`."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(folder) / CURRENT_FILE, f"{NETWORK}\n")


def publish_default(data_dir: Path, guild_id: int, number: int, backbone: str) -> int:
    """Copy version `number` of server `guild_id`'s head in as the default head's next version,
    made current; its number. `HeadError` if it was learned on another network than `backbone`
    (the served network's hash), `ModelError` if there is no such version."""
    source = server_folder(data_dir, guild_id) / str(int(number))
    if not source.is_dir():
        raise ModelError(f"server {guild_id} has no version {number}")
    head = Head.load(source)
    check_backbone(head, backbone)
    folder = default_folder(data_dir)
    version = max(versions(folder), default=0) + 1
    stamped = with_figures(
        head, version=version, source_guild=int(guild_id), source_version=int(number)
    )
    return publish_head(stamped, folder)


def serve_version(folder: Path, number: int) -> None:
    """The server is served its version `number` (a `!rollback N`)."""
    if number not in versions(folder):
        kept = ", ".join(str(n) for n in versions(folder)) or "none"
        raise ModelError(f"there is no version {number}; the versions kept are {kept}")
    set_current(folder, number)


@dataclass(frozen=True)
class HeadVersion:
    """What `!model` says about one version of a server's head."""

    number: int
    figures: dict[str, Any]
    current: bool

    def line(self) -> str:
        figures = self.figures
        parts = [f"**version {self.number}**" + (" (current)" if self.current else "")]
        created = figures.get("created")
        if created:
            parts.append(f"made <t:{int(datetime.fromisoformat(created).timestamp())}:R>")
        per_class = figures.get("per_class") or {}
        if per_class:
            parts.append(" + ".join(f"{n} {label}" for label, n in per_class.items()))
        holdout = figures.get("holdout") or {}
        if holdout.get("accuracy") is not None:
            parts.append(f"holdout accuracy {holdout['accuracy']:.1%} on {holdout['images']}")
        return " - ".join(parts)


def head_history(folder: Path, limit: int = 5) -> list[HeadVersion]:
    """The server's current version first, then the newest others, `limit` in all."""
    current = current_head_version(folder)
    numbers = versions(folder)
    ordered = [n for n in [current] if n in numbers]
    ordered += [n for n in reversed(numbers) if n != current]
    described = []
    for number in ordered[:limit]:
        try:
            raw = read_info(Path(folder) / str(number)).raw
        except ModelError:
            continue  # a version being removed as we read
        described.append(HeadVersion(number, dict(raw.get("head") or {}), number == current))
    return described


def served_backbone(worker: Any) -> str | None:
    """The hash of the network `worker` (a `ModelWorker`) serves now: what a head must be
    learned on to be applied."""
    try:
        return worker.classifier.info.files.get(TFLITE_FILE)
    except RuntimeError:  # not started: nothing is served yet
        return None


def head_bytes(head: Head) -> int:
    """The memory a loaded head holds (its arrays, and a little for the rest)."""
    return head.nbytes + 4096


class HeadCache:
    """The servers' loaded heads, at most `max_bytes` of them (the least recently used are let
    go): a head is loaded on first use and again when its server's `CURRENT` changes; nothing
    else is touched. A server without a head of its own gets the default head, unless it was
    learned on another network than `backbone()` (the served network's hash; one log line).
    Thread-safe; `get` reads files, so the event loop calls it in a thread."""

    def __init__(
        self,
        data_dir: Path,
        max_bytes: int,
        backbone: Callable[[], str | None] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes
        self.backbone = backbone
        self._heads: OrderedDict[int, tuple[Any, Head | None, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._refused: set[tuple[str, str | None]] = set()
        self.loads = 0

    @property
    def size(self) -> int:
        """Bytes of the heads held now."""
        with self._lock:
            return sum(size for _, _, size in self._heads.values())

    def held(self) -> list[int]:
        """The servers whose model is held, least recently used first."""
        with self._lock:
            return [key for key in self._heads if key != 0]  # 0: the default head

    def get(self, guild_id: int | None) -> Head | None:
        """The head `guild_id` is served: its own, else (a DM, a server without its own model,
        or one whose head does not load: logged once per publish) the default head; None: the
        network's own verdict."""
        own = self.own(guild_id) if guild_id is not None else None
        return own if own is not None else self.default()

    def own(self, guild_id: int) -> Head | None:
        """`guild_id`'s own head; None when it has none (or it does not load)."""
        return self._held(int(guild_id), server_folder(self.data_dir, guild_id))

    def default(self) -> Head | None:
        """The default head, if there is one learned on the served network."""
        head = self._held(0, default_folder(self.data_dir))  # no server has the id 0
        if head is None or self.backbone is None:
            return head
        served = self.backbone()
        try:
            check_backbone(head, served or "")
        except HeadError as error:
            if (head.backbone, served) not in self._refused:
                self._refused.add((head.backbone, served))
                log.warning("the default head is not applied: %s", error)
            return None
        return head

    def _held(self, key: int, folder: Path) -> Head | None:
        stamp = publish_stamp(folder) if (folder / CURRENT_FILE).exists() else None
        with self._lock:
            held = self._heads.get(key)
            if held is not None and held[0] == stamp:
                self._heads.move_to_end(key)
                return held[1]
        head = self._load(folder) if stamp is not None else None
        size = head_bytes(head) if head is not None else 64
        with self._lock:
            self._heads[key] = (stamp, head, size)
            self._heads.move_to_end(key)
            total = sum(item[2] for item in self._heads.values())
            while total > self.max_bytes and len(self._heads) > 1:
                _, (_, _, freed) = self._heads.popitem(last=False)
                total -= freed
        return head

    def _load(self, folder: Path) -> Head | None:
        number = current_head_version(folder)
        if number is None:
            return None
        self.loads += 1
        try:
            return Head.load(folder / str(number))
        except ModelError as error:
            log.error("served the default model instead of the head in %s: %s", folder, error)
            return None
