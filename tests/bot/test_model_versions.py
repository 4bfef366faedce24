"""Where retrained models go, what the bot serves, and what `!model` and `!rollback` see."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.model_versions import (
    describe,
    history,
    prepare_retrained_folder,
    retrained_folder,
    rollback_target,
    serving_folder,
)
from model.bundle import (
    DEFAULT_MODEL_DIR,
    METADATA_FILE,
    ModelError,
    current_version,
    publish,
    read_info,
    set_current,
    staging_folder,
    versions,
)


def fake_version(folder: Path, accuracy: float, notes: str = "") -> None:
    """A model version with only model.json: enough for what these functions read."""
    with staging_folder(folder / "next") as staging:
        meta = {
            "class_names": ["jedi", "sith"],
            "image_size": [200, 200],
            "parameters": 1,
            "created": "2026-12-01T10:00:00+00:00",
            "dataset": {"counts": {"jedi": 20, "sith": 21}, "notes": notes},
            "metrics": {"validation": {"accuracy": accuracy}},
        }
        (staging / METADATA_FILE).write_text(json.dumps(meta))
        publish(staging, folder)


def test_the_shipped_model_is_never_the_retrain_target(tmp_path: Path) -> None:
    assert retrained_folder(DEFAULT_MODEL_DIR, tmp_path) == tmp_path / "models"
    own = tmp_path / "mine"
    assert retrained_folder(own, tmp_path / "data") == own


def test_the_bot_serves_retrained_models_once_there_are_some(tmp_path: Path) -> None:
    assert serving_folder(DEFAULT_MODEL_DIR, tmp_path) == DEFAULT_MODEL_DIR
    target = prepare_retrained_folder(DEFAULT_MODEL_DIR, tmp_path)
    assert target == tmp_path / "models"
    assert serving_folder(DEFAULT_MODEL_DIR, tmp_path) == target
    assert versions(target) == [1] and current_version(target) == 1


def test_the_first_version_is_the_shipped_model(tmp_path: Path) -> None:
    target = prepare_retrained_folder(DEFAULT_MODEL_DIR, tmp_path)
    shipped = read_info(DEFAULT_MODEL_DIR)
    copied = read_info(target)
    assert copied.files == shipped.files  # the same bytes, hashed
    assert (target / "1" / "model.tflite").read_bytes() == (
        DEFAULT_MODEL_DIR / "model.tflite"
    ).read_bytes()
    again = prepare_retrained_folder(DEFAULT_MODEL_DIR, tmp_path)  # idempotent
    assert again == target and versions(target) == [1]


def test_an_own_model_path_is_used_as_it_is(tmp_path: Path) -> None:
    own = tmp_path / "own"
    shutil.copytree(DEFAULT_MODEL_DIR, own)
    assert prepare_retrained_folder(own, tmp_path / "data") == own
    assert not (tmp_path / "data").exists()
    assert serving_folder(own, tmp_path / "data") == own


def test_rollback_goes_to_the_previous_version_or_the_one_named(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    for accuracy in (0.8, 0.85, 0.9):
        fake_version(folder, accuracy)
    assert rollback_target(folder, None) == 2
    assert rollback_target(folder, 1) == 1
    set_current(folder, 1)
    with pytest.raises(ModelError, match="oldest"):
        rollback_target(folder, None)
    with pytest.raises(ModelError, match="already the current"):
        rollback_target(folder, 1)
    with pytest.raises(ModelError, match="no version 7; the versions kept are 1, 2, 3"):
        rollback_target(folder, 7)


def test_a_flat_folder_cannot_roll_back(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no earlier version"):
        rollback_target(DEFAULT_MODEL_DIR, None)


def test_history_lists_the_current_version_first(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    for accuracy in (0.8, 0.85, 0.9):
        fake_version(folder, accuracy, notes=f"run {accuracy}")
    set_current(folder, 2)
    listed = history(folder)
    assert [v.number for v in listed] == [2, 3, 1]
    assert [v.current for v in listed] == [True, False, False]
    assert listed[0].val_accuracy == 0.85 and listed[0].counts == {"jedi": 20, "sith": 21}
    line = listed[0].line()
    assert line.startswith("**version 2** (current)")
    assert "20 jedi + 21 sith" in line and "validation accuracy 85.0%" in line
    assert "run 0.85" in line


def test_the_shipped_model_is_described() -> None:
    info = describe(DEFAULT_MODEL_DIR, None, None)
    assert info.number is None and info.counts == {"jedi": 745, "sith": 637}
    assert info.val_accuracy is not None and info.val_accuracy > 0.9
    assert history(DEFAULT_MODEL_DIR)[0].line().startswith("**the model**")
