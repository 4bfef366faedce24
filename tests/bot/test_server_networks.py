"""A server's own networks: published as a version of kind network beside its heads, served
from a bounded cache (the least recently used let go, one server reloaded when it publishes or
rolls back, the others untouched), and listed with their kind."""

from __future__ import annotations

import logging
from pathlib import Path
from unittest import mock

import pytest
from heads_support import make_head

from bot.server_models import (
    HeadCache,
    NetworkCache,
    NetworkVersion,
    current_kind,
    head_history,
    load_network,
    publish_head,
    publish_network,
    serve_version,
    server_folder,
)
from model.bundle import DEFAULT_MODEL_DIR, ModelError, versions
from model.head import Head
from model.runtime import Classifier, ServerNetwork


class Loads:
    """A loader of stand-in networks (`spec_set` against `Classifier`) that counts its loads."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def __call__(self, path: Path) -> Classifier:
        self.paths.append(Path(path))
        return mock.create_autospec(Classifier, instance=True, spec_set=True)


def version(path: str, number: int = 1) -> NetworkVersion:
    return NetworkVersion(Path(path) / str(number), {"version": number})


def test_the_cache_keeps_the_least_recently_used_out() -> None:
    loads = Loads()
    cache = NetworkCache(2, loads)
    first = cache.get(1, version("a"))
    cache.get(2, version("b"))
    assert cache.get(1, version("a")) is first  # held: not loaded again
    cache.get(3, version("c"))  # 2 is the least recently used
    assert cache.held() == [1, 3] and len(loads.paths) == 3
    assert cache.get(2, version("b")) is not None
    assert cache.held() == [3, 2] and len(loads.paths) == 4
    assert isinstance(first, ServerNetwork) and first.figures == {"version": 1}


def test_a_new_version_reloads_that_server_alone() -> None:
    loads = Loads()
    cache = NetworkCache(3, loads)
    one, other = cache.get(1, version("a", 1)), cache.get(2, version("b", 1))
    newer = cache.get(1, version("a", 2))
    assert newer is not one and newer is not None and newer.figures == {"version": 2}
    assert cache.get(2, version("b", 1)) is other
    assert loads.paths == [Path("a/1"), Path("b/1"), Path("a/2")]


def test_a_network_that_does_not_load_is_none_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(path: Path) -> Classifier:
        raise ModelError("model.tflite is damaged")

    cache = NetworkCache(1, broken)
    with caplog.at_level(logging.ERROR):
        assert cache.get(1, version("a")) is None
        assert cache.get(1, version("a")) is None
    assert [r.getMessage() for r in caplog.records].count(
        "served the default model instead of the network in a/1: model.tflite is damaged"
    ) == 1
    with pytest.raises(ValueError):
        NetworkCache(0)


def test_a_server_is_served_its_network_then_its_head_after_a_rollback(tmp_path: Path) -> None:
    folder = server_folder(tmp_path, 42)
    assert publish_head(make_head(0), folder) == 1
    figures = {"per_class": {"jedi": 120, "sith": 120}, "holdout": {"accuracy": 0.9, "images": 40}}
    assert publish_network(DEFAULT_MODEL_DIR, folder, figures) == 2
    assert current_kind(folder) == "network" and versions(folder) == [1, 2]
    assert not (folder / "2" / "model.keras").exists()  # serving reads the LiteRT file only
    networks = NetworkCache(1, load_network)
    cache = HeadCache(tmp_path, 1 << 20, networks=networks)
    served = cache.get(42)
    assert isinstance(served, ServerNetwork) and served.figures["version"] == 2
    assert served.classifier.backend_name == "litert"
    assert isinstance(cache.get(7), type(None))  # another server: the default model
    assert networks.held() == [42]

    serve_version(folder, 1)
    assert isinstance(cache.get(42), Head) and current_kind(folder) == "head"
    lines = [v.line() for v in head_history(folder)]
    assert lines[0].startswith("**version 1** (current) - a head")
    assert lines[1].startswith("**version 2** - a network") and "120 jedi + 120 sith" in lines[1]
    assert "holdout accuracy 90.0% on 40" in lines[1]
