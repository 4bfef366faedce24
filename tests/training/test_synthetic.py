"""The synthetic Jedi/Sith generator: layout, determinism, and that its classes are learnable
from the blade but not from the mean colour of an image."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.synthetic import LABELS, draw_scene, generate_dataset, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PER_CLASS = 100


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root`, by path relative to it, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _blade_pixels(img: Image.Image) -> tuple[float, float]:
    """Fractions of bright, strongly saturated pixels that are red, and that are blue/green.

    A hand-made feature: the brightest saturated pixels of a scene are its lightsaber's.
    """
    hsv = np.asarray(img.convert("HSV"), dtype=np.float32)
    rgb = np.asarray(img, dtype=np.float32)
    hue = hsv[..., 0] * (360.0 / 255.0)
    vivid = (rgb.max(axis=-1) > 190) & (rgb.max(axis=-1) - rgb.min(axis=-1) > 150)
    red = vivid & ((hue < 20) | (hue > 340))
    cool = vivid & (hue > 70) & (hue < 300)
    return float(red.mean()), float(cool.mean())


def _best_threshold_error(values: np.ndarray, is_sith: np.ndarray) -> float:
    """The lowest error rate any single threshold on `values` (either way round) achieves."""
    best = 1.0
    for t in np.unique(values):
        above = values > t
        err = float((above != is_sith).mean())
        best = min(best, err, 1.0 - err)
    return best


@pytest.fixture(scope="module")
def sample() -> dict[str, np.ndarray]:
    """Features of 100 scenes per class drawn in memory: mean colour and blade pixels."""
    means, blades, labels = [], [], []
    for k, label in enumerate(LABELS):
        for i in range(SAMPLE_PER_CLASS):
            img = draw_scene(label, np.random.default_rng([1234, k, i]))
            assert img.size == (200, 200) and img.mode == "RGB"
            arr = np.asarray(img, dtype=np.float32)
            means.append([arr.mean(), *arr.mean(axis=(0, 1))])
            blades.append(_blade_pixels(img))
            labels.append(label == "sith")
    return {"means": np.array(means), "blades": np.array(blades), "is_sith": np.array(labels)}


def test_layout_sizes_and_formats(tmp_path: Path) -> None:
    counts = generate_dataset(tmp_path, jedi=7, sith=5, seed=3)
    assert counts == {"jedi": 7, "sith": 5}
    suffixes = set()
    for label, n in counts.items():
        files = sorted((tmp_path / label).iterdir())
        assert [p.stem for p in files] == [f"{label}_{i:05d}" for i in range(n)]
        for path in files:
            suffixes.add(path.suffix)
            with Image.open(path) as img:
                assert img.format == {".jpg": "JPEG", ".png": "PNG"}[path.suffix]
                assert img.size == (200, 200)
                assert img.mode == "RGB"
    assert suffixes == {".jpg", ".png"}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", jedi=4, sith=4, seed=5)
    generate_dataset(tmp_path / "b", jedi=4, sith=4, seed=5)
    generate_dataset(tmp_path / "c", jedi=4, sith=4, seed=6)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert a == b
    assert len(a) == 8
    shared = a.keys() & c.keys()
    assert all(a[name] != c[name] for name in shared)
    assert a != c


def test_smaller_run_is_a_prefix_of_a_larger_one(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "small", jedi=3, sith=2, seed=9)
    generate_dataset(tmp_path / "large", jedi=6, sith=5, seed=9)
    small, large = _files(tmp_path / "small"), _files(tmp_path / "large")
    assert len(small) == 5 and len(large) == 11
    assert all(large.get(name) == data for name, data in small.items())


def test_workers_give_the_same_files(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "one", jedi=3, sith=3, seed=2)
    generate_dataset(tmp_path / "two", jedi=3, sith=3, seed=2, workers=2)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def test_rewriting_a_folder_overwrites_without_duplicates(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "reused", jedi=4, sith=4, seed=1)
    generate_dataset(tmp_path / "reused", jedi=4, sith=4, seed=2)
    generate_dataset(tmp_path / "fresh", jedi=4, sith=4, seed=2)
    assert _files(tmp_path / "reused") == _files(tmp_path / "fresh")


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, jedi=-1)
    with pytest.raises(ValueError):
        generate_dataset(tmp_path, workers=0)
    with pytest.raises(ValueError):
        draw_scene("droid", np.random.default_rng(0))


def test_blade_colour_differs_by_class_on_average(sample: dict[str, np.ndarray]) -> None:
    red, cool = sample["blades"].T
    sith = sample["is_sith"]
    assert red[sith].mean() > 5 * red[~sith].mean()
    assert cool[~sith].mean() > 5 * cool[sith].mean()


def test_blade_feature_separates_the_classes(sample: dict[str, np.ndarray]) -> None:
    red, cool = sample["blades"].T
    accuracy = float(((red > cool) == sample["is_sith"]).mean())
    assert accuracy > 0.9


def test_mean_colour_does_not_separate_the_classes(sample: dict[str, np.ndarray]) -> None:
    means, sith = sample["means"], sample["is_sith"]
    for column, name in enumerate(("brightness", "red", "green", "blue")):
        error = _best_threshold_error(means[:, column], sith)
        assert error >= 0.15, f"a threshold on mean {name} misclassifies only {error:.0%}"
    # Nor does a linear classifier on the mean colour, fitted to the very sample it is scored on.
    features = np.c_[means[:, 1:], np.ones(len(means))]
    weights = np.linalg.lstsq(features, np.where(sith, 1.0, -1.0), rcond=None)[0]
    assert float(((features @ weights > 0) == sith).mean()) < 0.85


def test_main_writes_files(tmp_path: Path) -> None:
    assert main([str(tmp_path), "--jedi", "2", "--sith", "3", "--seed", "4"]) == 0
    assert len(list((tmp_path / "jedi").iterdir())) == 2
    assert len(list((tmp_path / "sith").iterdir())) == 3


@pytest.mark.parametrize(
    "args", [["--jedi", "-1"], ["--sith", "-5"], ["--jedi", "x"], ["--workers", "0"]]
)
def test_main_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "out"), *args])
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_module_runs_as_a_script(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "training.synthetic", str(tmp_path), "--jedi", "1", "--sith", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(list(tmp_path.rglob("*_00000.*"))) == 2
    bad = subprocess.run(
        [*cmd[:4], "--jedi", "-3"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2
    assert "--jedi" in bad.stderr
