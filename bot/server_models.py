"""Each server's own model: where its versions live, which one it is served, and a bounded cache
of the loaded heads every verdict path reads.

A server's model is a head on the shared network (`model.head`), or, after a `!retrain network`
that beat it, a whole network of its own (kind "network": the trainer's model folder, served
by `NetworkCache`), published as numbered versions in `DATA_DIR/models/servers/<guild_id>/` by
`model.bundle`'s machinery (the last `SERVER_MODEL_VERSIONS` kept, of either kind, the current
one never removed). `CURRENT` names the version served;
no `CURRENT`, or one that says `default`, means the server is served the default model, which
every DM and user install is served too: the default head the operator chose (`!default from`,
versions in `DATA_DIR/models/default/`, each a copy of a consenting server's head), or, when
there is none (`CURRENT` says `network`), the shared network's own verdict.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataset.labels import NEITHER
from dataset.queries import vouched
from model.bundle import (
    CURRENT_FILE,
    METADATA_FILE,
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
from model.head import KIND as HEAD_KIND
from model.head import Head, HeadError, check_backbone, with_figures
from model.runtime import Classifier, ServerNetwork

log = logging.getLogger(__name__)

SERVERS_FOLDER = Path("models") / "servers"  # under DATA_DIR
DEFAULT_FOLDER = Path("models") / "default"  # under DATA_DIR: the default head's versions
DEFAULT = "default"  # what CURRENT says when a server went back to the default model
NETWORK = "network"  # what the default's CURRENT says when it is the network's own verdict
KEEP_SERVER_VERSIONS = 5  # the default of the setting SERVER_MODEL_VERSIONS, which callers pass
NETWORKS_CACHED = 2  # the default of the setting SERVER_NETWORKS_CACHED
NETWORK_FIGURES = "network"  # model.json's key for what a server's network version records
MB = 1024 * 1024
HOLDOUT_MIN_VOTERS = 2  # the default of the setting HOLDOUT_MIN_VOTERS, which callers pass


def server_images(
    store: Any,
    guild_id: int,
    holdout: bool | None,
    *,
    neither: bool = False,
    min_voters: int = HOLDOUT_MIN_VOTERS,
) -> list[Any]:
    """The server's labelled images (`LabelledImage`s) of one split (None: both), from its own
    votes only: the one place the server models read the dataset. Its Jedi and Sith images, or
    with `neither` its images labelled neither (what its model should refuse).

    A held-out Jedi or Sith image is left out until its label has the votes of `min_voters`
    members (the environment's HOLDOUT_MIN_VOTERS; the server's own `!settings voters` wins)
    or a moderator's: what judges the server's models is never one member's say alone."""
    images = store.labelled(guild_id, holdout=holdout)
    if neither:
        return [image for image in images if image.label == NEITHER]
    if holdout is not False:
        own = store.guild_settings(guild_id).holdout_min_voters
        min_voters = min_voters if own is None else own
        images = [
            image
            for image in images
            if not image.holdout or vouched(image.voters, image.moderated, min_voters)
        ]
    return [image for image in images if image.label in store.class_names]


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


def version_kind(version: Path) -> str:
    """ "head" or "network": the kind of a server's version folder (a network's model.json names
    no kind)."""
    return HEAD_KIND if read_info(Path(version)).raw.get("kind") == HEAD_KIND else NETWORK


def current_kind(folder: Path) -> str | None:
    """The kind of the version a server is served; None: the default model."""
    number = current_head_version(folder)
    return version_kind(Path(folder) / str(number)) if number is not None else None


SERVED_FILES = ("model.tflite", "detector.npz", "model.json")  # what serving a network reads


def publish_network(
    candidate: Path, folder: Path, figures: dict[str, Any], keep: int = KEEP_SERVER_VERSIONS
) -> int:
    """Publish the trainer's model folder `candidate` as the server's next version (kind
    "network", with `figures` in its model.json), made current; its number. Only what serving
    reads is copied (LiteRT's file, not the Keras one)."""
    source = Path(candidate)
    number = max(versions(folder), default=0) + 1
    stamp = {
        **figures,
        "version": number,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with staging_folder(Path(folder) / "next") as staging:
        for name in SERVED_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
        metadata = json.loads((staging / METADATA_FILE).read_text(encoding="utf-8"))
        metadata[NETWORK_FIGURES] = stamp
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2), encoding="utf-8")
        publish(staging, folder, keep=keep)
    published = current_head_version(folder)
    assert published is not None
    return published


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
    """What `!model` says about one version of a server's model (a head or a network)."""

    number: int
    figures: dict[str, Any]
    current: bool
    kind: str = HEAD_KIND

    def line(self) -> str:
        figures = self.figures
        parts = [f"**version {self.number}**" + (" (current)" if self.current else "")]
        parts.append(f"a {self.kind}")
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
        kind = HEAD_KIND if raw.get("kind") == HEAD_KIND else NETWORK
        figures = raw.get("head") if kind == HEAD_KIND else raw.get(NETWORK_FIGURES)
        described.append(HeadVersion(number, dict(figures or {}), number == current, kind))
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


def load_network(version: Path) -> Classifier:
    """A server's network version, on LiteRT (small and quick to load, whatever the shared
    network runs on)."""
    return Classifier.load(version, "litert")


@dataclass(frozen=True)
class NetworkVersion:
    """A server's current version that is a network: where it is, and what it records."""

    path: Path
    figures: dict[str, Any]


class NetworkCache:
    """The servers' own networks loaded for serving, at most `size` of them (the least recently
    used is let go): one is loaded on first use and again when its server's current version
    changes; the others are untouched. Thread-safe; `get` loads a network (about 0.1 s), so
    the event loop calls it in a thread (`HeadCache.get` does)."""

    def __init__(self, size: int, loader: Callable[[Path], Classifier] = load_network) -> None:
        if size < 1:
            raise ValueError("a cache of networks holds at least one")
        self.size = size
        self.loader = loader
        self._held: OrderedDict[int, tuple[Path, ServerNetwork]] = OrderedDict()
        self._lock = threading.Lock()
        self._broken: set[Path] = set()
        self.loads = 0

    def held(self) -> list[int]:
        """The servers whose network is loaded, least recently used first."""
        with self._lock:
            return list(self._held)

    def get(self, guild_id: int, version: NetworkVersion) -> ServerNetwork | None:
        """`guild_id`'s network at `version`, loaded if it is not held yet; None if it does not
        load (logged once per version: the server is served the default model meanwhile)."""
        path = Path(version.path)
        with self._lock:
            held = self._held.get(guild_id)
            if held is not None and held[0] == path:
                self._held.move_to_end(guild_id)
                return held[1]
        try:
            classifier = self.loader(path)
        except (ModelError, OSError, ValueError) as error:
            if path not in self._broken:
                self._broken.add(path)
                log.error("served the default model instead of the network in %s: %s", path, error)
            return None
        network = ServerNetwork(classifier, dict(version.figures))
        with self._lock:
            self.loads += 1
            self._held[guild_id] = (path, network)
            self._held.move_to_end(guild_id)
            while len(self._held) > self.size:
                self._held.popitem(last=False)
        return network


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
        networks: NetworkCache | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.max_bytes = max_bytes
        self.backbone = backbone
        self.networks = networks or NetworkCache(NETWORKS_CACHED)
        self._heads: OrderedDict[int, tuple[Any, Head | NetworkVersion | None, int]] = OrderedDict()
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

    def get(self, guild_id: int | None) -> Head | ServerNetwork | None:
        """The model `guild_id` is served: its own (a head, or a network of its own), else (a
        DM, a server without its own model, or one whose model does not load: logged once per
        publish) the default head; None: the network's own verdict."""
        own = self.own(guild_id) if guild_id is not None else None
        return own if own is not None else self.default()

    def own(self, guild_id: int) -> Head | ServerNetwork | None:
        """`guild_id`'s own model; None when it has none (or it does not load)."""
        held = self._held(int(guild_id), server_folder(self.data_dir, guild_id))
        if isinstance(held, NetworkVersion):
            return self.networks.get(int(guild_id), held)
        return held

    def default(self) -> Head | None:
        """The default head, if there is one learned on the served network."""
        head = self._held(0, default_folder(self.data_dir))  # no server has the id 0
        if not isinstance(head, Head) or self.backbone is None:
            return head if isinstance(head, Head) else None
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

    def _held(self, key: int, folder: Path) -> Head | NetworkVersion | None:
        stamp = publish_stamp(folder) if (folder / CURRENT_FILE).exists() else None
        with self._lock:
            held = self._heads.get(key)
            if held is not None and held[0] == stamp:
                self._heads.move_to_end(key)
                return held[1]
        head = self._load(folder) if stamp is not None else None
        size = head_bytes(head) if isinstance(head, Head) else 64
        with self._lock:
            self._heads[key] = (stamp, head, size)
            self._heads.move_to_end(key)
            total = sum(item[2] for item in self._heads.values())
            while total > self.max_bytes and len(self._heads) > 1:
                _, (_, _, freed) = self._heads.popitem(last=False)
                total -= freed
        return head

    def _load(self, folder: Path) -> Head | NetworkVersion | None:
        number = current_head_version(folder)
        if number is None:
            return None
        self.loads += 1
        try:
            raw = read_info(folder / str(number)).raw
            if raw.get("kind") != HEAD_KIND:
                return NetworkVersion(folder / str(number), dict(raw.get(NETWORK_FIGURES) or {}))
            return Head.load(folder / str(number))
        except ModelError as error:
            log.error("served the default model instead of the head in %s: %s", folder, error)
            return None
