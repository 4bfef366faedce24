"""What the bot's start-up log says about the model's honesty."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import honesty_summary
from model.bundle import DEFAULT_MODEL_DIR
from model.runtime import Classifier


def test_the_shipped_model_names_its_threshold_and_temperature() -> None:
    classifier = Classifier.load(DEFAULT_MODEL_DIR, "litert")
    text = honesty_summary(classifier, "warn")
    assert text.startswith("unlike images: warn (threshold ")
    assert f"{classifier.detector.threshold:.2f}" in text
    assert f"temperature {classifier.calibration.temperature:.3f}" in text


@pytest.mark.slow
def test_an_old_folder_says_every_image_gets_a_verdict(old_model: Path) -> None:
    classifier = Classifier.load(old_model, "litert")
    assert honesty_summary(classifier, "refuse") == (
        "no out-of-distribution detector: every image gets a verdict"
    )
