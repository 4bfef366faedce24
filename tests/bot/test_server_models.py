"""bot.server_models: a server's versions, `CURRENT` (a version or the default model), and the
bounded cache of loaded heads (reloaded when that server's CURRENT changes, others untouched)."""

from __future__ import annotations

from pathlib import Path

import pytest
from heads_support import make_head

from bot.server_models import (
    DEFAULT,
    HeadCache,
    current_head_version,
    head_bytes,
    head_history,
    publish_head,
    serve_default,
    serve_version,
    server_folder,
)
from model.bundle import CURRENT_FILE, ModelError, versions


def test_versions_current_and_the_default(tmp_path: Path) -> None:
    folder = server_folder(tmp_path, 42)
    assert current_head_version(folder) is None  # never taught: the default model
    assert publish_head(make_head(0), folder) == 1
    assert publish_head(make_head(1), folder) == 2
    assert current_head_version(folder) == 2
    serve_default(folder)
    assert (folder / CURRENT_FILE).read_text().strip() == DEFAULT
    assert current_head_version(folder) is None
    assert publish_head(make_head(2), folder) == 3  # after the default, numbering goes on
    serve_version(folder, 1)
    assert current_head_version(folder) == 1
    with pytest.raises(ModelError, match="no version 9"):
        serve_version(folder, 9)
    lines = [version.line() for version in head_history(folder)]
    assert lines[0].startswith("**version 1** (current)") and "10 jedi + 10 sith" in lines[0]


def test_the_last_few_versions_are_kept(tmp_path: Path) -> None:
    folder = server_folder(tmp_path, 7)
    for seed in range(4):
        publish_head(make_head(seed), folder, keep=2)
    assert versions(folder) == [3, 4] and current_head_version(folder) == 4


def test_the_cache_loads_on_first_use_and_reloads_one_server(tmp_path: Path) -> None:
    cache = HeadCache(tmp_path, max_bytes=10 * 1024 * 1024)
    one, two = server_folder(tmp_path, 1), server_folder(tmp_path, 2)
    publish_head(make_head(0), one)
    publish_head(make_head(0, flip=True), two)
    assert cache.get(None) is None and cache.get(3) is None  # a DM, a server never taught
    first, second = cache.get(1), cache.get(2)
    assert first is not None and second is not None
    assert first.weights[0] > 0 > second.weights[0]
    loads = cache.loads
    assert cache.get(1) is first and cache.get(2) is second and cache.loads == loads
    publish_head(make_head(5, flip=True), one)  # server 1 publishes: only it reloads
    reloaded = cache.get(1)
    assert reloaded is not first and reloaded is not None and reloaded.weights[0] < 0
    assert cache.get(2) is second and cache.loads == loads + 1
    serve_default(one)
    assert cache.get(1) is None and cache.get(2) is second


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    head = make_head(0)
    for guild in range(1, 6):
        publish_head(head, server_folder(tmp_path, guild))
    cache = HeadCache(tmp_path, max_bytes=int(2.5 * head_bytes(head)))
    for guild in range(1, 6):
        assert cache.get(guild) is not None
    assert cache.held() == [4, 5] and cache.size <= cache.max_bytes
    loads = cache.loads
    assert cache.get(1) is not None and cache.loads == loads + 1  # let go, loaded again
    assert cache.held() == [5, 1]


def test_a_damaged_head_is_served_the_default(tmp_path: Path, caplog) -> None:
    folder = server_folder(tmp_path, 1)
    publish_head(make_head(0), folder)
    (folder / "1" / "head.npz").write_bytes(b"broken")
    assert HeadCache(tmp_path, 1 << 20).get(1) is None
    assert "served the default model instead" in caplog.text
