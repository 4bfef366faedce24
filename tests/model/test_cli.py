"""The `jedisith` command line, including its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def samples(tiny_dataset: Path) -> tuple[Path, Path]:
    jedi, sith = (sorted((tiny_dataset / name).iterdir())[0] for name in ("jedi", "sith"))
    return jedi, sith


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "noise.png"
    pixels = np.random.default_rng(3).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _verdict(text: str) -> tuple[str, str]:
    """`Sith 0.973` -> ("Sith", "0.973"), also inside the refusal's parentheses."""
    label, score = text.removeprefix("not like the training images (would say ").rstrip(")").split()
    return label, score


def test_classify_prints_a_line_per_image(trained_model: Path, samples, capsys) -> None:
    code = main(["classify", "--model", str(trained_model), *map(str, samples)])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert len(out) == 2
    for line, path in zip(out, samples, strict=True):
        name, verdict = line.split(": ", 1)
        label, score = _verdict(verdict)
        assert name == str(path)
        assert label in ("Jedi", "Sith")
        assert (float(score) >= 0.5) == (label == "Sith")
        assert len(score.split(".")[1]) == 3


def test_classify_json(trained_model: Path, samples, capsys) -> None:
    assert main(["classify", "--json", "--model", str(trained_model), str(samples[0])]) == 0
    record = json.loads(capsys.readouterr().out)
    assert set(record) == {
        "file",
        "label",
        "score",
        "raw_score",
        "distance",
        "threshold",
        "in_distribution",
    }
    assert record["file"] == str(samples[0]) and record["label"] in ("jedi", "sith")
    assert 0.0 <= record["score"] <= 1.0 and 0.0 <= record["raw_score"] <= 1.0
    assert (record["score"] >= 0.5) == (record["raw_score"] >= 0.5)  # calibration keeps verdicts
    assert record["distance"] >= 0 and record["threshold"] > 0
    assert record["in_distribution"] == (record["distance"] <= record["threshold"])


def test_noise_is_not_like_the_training_images(trained_model: Path, noise: Path, capsys) -> None:
    assert main(["classify", "--json", "--model", str(trained_model), str(noise)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["in_distribution"] is False and record["distance"] > record["threshold"]
    assert main(["classify", "--model", str(trained_model), str(noise)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{noise}: not like the training images (would say ")
    assert _verdict(line.split(": ", 1)[1])[0] == record["label"].capitalize()


def test_a_model_without_a_detector_gives_nulls(old_model: Path, noise: Path, capsys) -> None:
    assert main(["classify", "--json", "--model", str(old_model), str(noise)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["distance"] is None and record["in_distribution"] is None
    assert record["raw_score"] == record["score"]
    assert main(["info", "--model", str(old_model)]) == 0
    assert "no calibration or detector" in capsys.readouterr().out


def test_bad_files_fail_alone(trained_model: Path, samples, tmp_path: Path, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    args = ["classify", "--model", str(trained_model), str(text), str(samples[0])]
    code = main([*args, str(tmp_path / "missing.png"), str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.count("\n") == 1 and str(samples[0]) in captured.out
    errors = captured.err.strip().splitlines()
    assert len(errors) == 3
    assert "not an image" in errors[0] and "no such file" in errors[1] and "folder" in errors[2]
    assert "Traceback" not in captured.err


def test_missing_model_is_one_line(tmp_path: Path, samples, capsys) -> None:
    code = main(["classify", "--model", str(tmp_path / "none"), str(samples[0])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot load the model" in err


def test_model_path_from_the_environment(trained_model: Path, samples, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_PATH", str(trained_model))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert str(trained_model) in out and "622,753" in out and "jedi, sith" in out
    assert "validation accuracy" in out and "litert" in out
    for key in ("calibration ECE", "calibration Brier", "detector threshold", "detector refuses"):
        assert key in out
    assert "100% of noise" in out
    # 10 validation images are too few for the detector's bound, and info says so.
    assert "too few validation images for the 95% bound: the largest distance" in out


def test_info_states_the_detectors_bound_for_the_shipped_model(monkeypatch, capsys) -> None:
    monkeypatch.delenv("MODEL_PATH", raising=False)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "for at least 95% of new ones, with 90% confidence)" in out
    assert "too few validation images" not in out


def test_features_writes_pngs(trained_model: Path, samples, tmp_path: Path, capsys) -> None:
    out = tmp_path / "maps.png"
    model = ["--model", str(trained_model)]
    assert main(["features", *model, str(samples[1]), "-o", str(out), "--layer", "2"]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG"
    assert main(["features", *model, str(samples[1]), "-o", str(out)]) == 0
    written = sorted(p.name for p in tmp_path.glob("maps_conv*.png"))
    assert written == [f"maps_conv{n}.png" for n in range(1, 6)]
    capsys.readouterr()
    assert main(["features", *model, str(tmp_path / "nope.jpg"), "-o", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err


def test_layer_out_of_range_is_a_usage_error(samples, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["features", str(samples[0]), "-o", str(tmp_path / "x.png"), "--layer", "9"])
    assert exit_info.value.code == 2
