"""SERVER_MODEL_VERSIONS: the versions of a server's model kept; the one it is served is never
rotated out, not even by a publish that races a `!rollback N`, and the default model stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from heads_support import make_head

import model.bundle
from bot.server_models import (
    KEEP_SERVER_VERSIONS,
    current_head_version,
    publish_head,
    serve_default,
    serve_version,
    server_folder,
)
from bot.settings import Settings
from model.bundle import versions


def test_the_setting_and_its_default() -> None:
    assert Settings(token="x").server_model_versions == KEEP_SERVER_VERSIONS == 5
    assert (
        Settings.from_env(
            {"DISCORD_TOKEN": "x", "SERVER_MODEL_VERSIONS": "2"}
        ).server_model_versions
        == 2
    )


def test_the_last_few_are_kept_and_the_default_stays(tmp_path: Path) -> None:
    folder = server_folder(tmp_path, 5)
    keep = Settings(token="x", server_model_versions=3).server_model_versions
    for seed in range(6):
        publish_head(make_head(seed), folder, keep=keep)
    assert versions(folder) == [4, 5, 6] and current_head_version(folder) == 6
    serve_default(folder)  # the server's starting point is never rotated out
    assert current_head_version(folder) is None
    serve_version(folder, 4)
    assert current_head_version(folder) == 4


def test_the_current_version_is_never_rotated_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `!rollback 1` lands between a publish's swap and its clean-up: version 1, served
    again, stays although it is beyond the last `keep`."""
    folder = server_folder(tmp_path, 9)
    for seed in range(3):
        publish_head(make_head(seed), folder, keep=2)
    assert versions(folder) == [2, 3]
    real = model.bundle.set_current

    def rollback_racing(target: Path, number: int) -> None:
        real(target, number)
        if number == 4:
            real(target, 2)  # someone's `!rollback 2`, just after the new version went live

    monkeypatch.setattr(model.bundle, "set_current", rollback_racing)
    publish_head(make_head(3), folder, keep=1)
    assert 2 in versions(folder) and current_head_version(folder) == 2
    assert versions(folder) == [2, 4]  # 3 went: neither current nor among the last 1
