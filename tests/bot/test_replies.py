"""What the bot says: verdict lines, the uncertain band, numbering, errors and file names."""

from __future__ import annotations

import re

import pytest

from bot import replies
from bot.replies import (
    SCORE_NOTE,
    classify_reply,
    confidence_words,
    features_caption,
    is_uncertain,
    verdict,
)
from model.preprocess import CorruptImageError, NotAnImageError
from model.runtime import Prediction

BAND = 0.1


def jedi(score: float) -> Prediction:
    return Prediction("jedi", score)


def sith(score: float) -> Prediction:
    return Prediction("sith", score)


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        (sith(0.973), "**Sith** - score 0.973 (very sure, 97%)"),
        (jedi(0.02), "**Jedi** - score 0.020 (very sure, 98%)"),
        (sith(0.8), "**Sith** - score 0.800 (fairly sure, 80%)"),
        (jedi(0.21), "**Jedi** - score 0.210 (fairly sure, 79%)"),
        (sith(0.7), "**Sith** - score 0.700 (leaning, 70%)"),
        (jedi(0.31), "**Jedi** - score 0.310 (leaning, 69%)"),
        (sith(1.0), "**Sith** - score 1.000 (very sure, 100%)"),
        (jedi(0.0), "**Jedi** - score 0.000 (very sure, 100%)"),
    ],
)
def test_verdict_words(prediction: Prediction, expected: str) -> None:
    assert verdict(prediction, BAND) == expected


def test_scores_always_have_three_decimals() -> None:
    for score in (0.0, 0.1234567, 0.5, 0.65, 0.99999, 1.0):
        text = verdict(sith(score) if score >= 0.5 else jedi(score), BAND)
        assert re.search(r"score \d\.\d{3} ", text), text


@pytest.mark.parametrize(
    ("prediction", "leaning"),
    [(sith(0.55), "Sith"), (jedi(0.45), "Jedi"), (sith(0.5), "Sith"), (jedi(0.41), "Jedi")],
)
def test_the_uncertain_band_says_cant_tell(prediction: Prediction, leaning: str) -> None:
    text = verdict(prediction, BAND)
    assert text.startswith("**Can't tell** - score ")
    assert f"{prediction.score:.3f}" in text
    assert f"leaning {leaning}" in text
    assert is_uncertain(prediction, BAND)


def test_outside_the_band_is_a_verdict() -> None:
    assert not is_uncertain(sith(0.61), BAND)
    assert not is_uncertain(jedi(0.39), BAND)
    assert verdict(sith(0.61), BAND).startswith("**Sith**")


def test_a_zero_band_never_hedges() -> None:
    assert verdict(sith(0.5), 0.0).startswith("**Sith**")
    assert verdict(jedi(0.4999), 0.0).startswith("**Jedi**")


def test_a_wide_band_hedges_more() -> None:
    assert verdict(sith(0.8), 0.4).startswith("**Can't tell**")


def test_confidence_words_thresholds() -> None:
    assert confidence_words(0.5) == "leaning"
    assert confidence_words(0.7499) == "leaning"
    assert confidence_words(0.75) == "fairly sure"
    assert confidence_words(0.8999) == "fairly sure"
    assert confidence_words(0.9) == "very sure"
    assert confidence_words(1.0) == "very sure"


def test_one_image_gets_one_line_and_the_score_note() -> None:
    text = classify_reply([("luke.png", jedi(0.05))], BAND)
    assert text.splitlines() == [verdict(jedi(0.05), BAND), SCORE_NOTE]
    assert "luke.png" not in text  # one image: no need to name it


def test_several_images_are_numbered_in_order() -> None:
    results = [
        ("luke.png", jedi(0.05)),
        ("vader.jpg", sith(0.97)),
        ("grogu.webp", sith(0.52)),
    ]
    lines = classify_reply(results, BAND).splitlines()
    assert lines[0] == "1. `luke.png`: **Jedi** - score 0.050 (very sure, 95%)"
    assert lines[1] == "2. `vader.jpg`: **Sith** - score 0.970 (very sure, 97%)"
    assert lines[2].startswith("3. `grogu.webp`: **Can't tell** - score 0.520")
    assert lines[3] == SCORE_NOTE
    assert len(lines) == 4


def test_an_error_for_a_single_file_names_it() -> None:
    error = NotAnImageError("That file is not an image I can read.")
    text = classify_reply([("notes.txt", error)], BAND)
    assert text == "`notes.txt`: That file is not an image I can read."
    assert SCORE_NOTE not in text  # no score was given


def test_errors_take_their_place_among_verdicts() -> None:
    results: list[tuple[str, Prediction | Exception]] = [
        ("a.png", sith(0.9)),
        ("b.png", CorruptImageError("The image is damaged.")),
        ("c.png", jedi(0.1)),
    ]
    lines = classify_reply(results, BAND).splitlines()
    assert lines[0].startswith("1. `a.png`: **Sith**")
    assert lines[1] == "2. `b.png`: The image is damaged."
    assert lines[2].startswith("3. `c.png`: **Jedi**")
    assert lines[3] == SCORE_NOTE


def test_only_errors_give_no_score_note() -> None:
    results: list[tuple[str, Prediction | Exception]] = [
        ("a.txt", NotAnImageError("not an image")),
        ("b.txt", NotAnImageError("not an image")),
    ]
    text = classify_reply(results, BAND)
    assert text.splitlines() == ["1. `a.txt`: not an image", "2. `b.txt`: not an image"]


@pytest.mark.parametrize("filename", ["evil`name.png", "``` code.png", "a`b`c.png"])
def test_backticks_in_file_names_cannot_break_out_of_inline_code(filename: str) -> None:
    many = classify_reply([(filename, sith(0.9)), ("ok.png", jedi(0.1))], BAND)
    one = classify_reply([(filename, NotAnImageError("nope"))], BAND)
    caption = features_caption(filename, sith(0.9), None)
    for text in (many, one, caption):
        first = text.splitlines()[0]
        assert first.count("`") == 2, first
        assert filename.replace("`", "'") in first


def test_long_file_names_are_cut() -> None:
    name = "x" * 300 + ".png"
    text = classify_reply([(name, sith(0.9)), ("b.png", sith(0.9))], BAND)
    first = text.splitlines()[0]
    assert f"`{'x' * 80}`" in first
    assert len(first) < 200


def test_the_skipped_files_note() -> None:
    results = [(f"{n}.png", sith(0.9)) for n in range(10)]
    lines = classify_reply(results, BAND, skipped=3).splitlines()
    assert lines[-2] == "-# I looked at the first 10 files only (3 more left)."
    assert lines[-1] == SCORE_NOTE
    assert lines[9].startswith("10. `9.png`: ")
    assert "more left" not in classify_reply(results, BAND, skipped=0)


def test_a_full_reply_fits_in_a_discord_message() -> None:
    results = [("x" * 200 + f"{n}.png", sith(0.5)) for n in range(10)]
    assert len(classify_reply(results, BAND, skipped=15)) <= 2000


def test_features_caption() -> None:
    all_layers = features_caption("vader.png", sith(0.9731), None)
    assert all_layers.startswith("What the network sees in `vader.png` (all five convolutions): ")
    assert "Sith, score 0.973." in all_layers
    one = features_caption("luke.png", jedi(0.0412), [3])
    assert "(convolution 3)" in one
    assert "Jedi, score 0.041." in one


def test_score_note_explains_the_scale() -> None:
    assert "0 is Jedi" in replies.SCORE_NOTE and "1 is Sith" in replies.SCORE_NOTE


def unlike(label: str, score: float) -> Prediction:
    """A verdict on an image the detector found unlike the training data."""
    return Prediction(label, score, raw_score=score, distance=9.5, threshold=6.0)


def typical(label: str, score: float) -> Prediction:
    return Prediction(label, score, raw_score=score, distance=2.0, threshold=6.0)


def test_an_unlike_image_is_refused_with_what_it_would_have_said() -> None:
    text = verdict(unlike("sith", 0.973), BAND)
    assert text == (
        "**Not a Jedi or a Sith?** - this doesn't look like what I learned from "
        "(it would have said Sith, 0.973)"
    )
    assert verdict(unlike("sith", 0.973), BAND, "refuse") == text
    assert verdict(typical("sith", 0.973), BAND) == "**Sith** - score 0.973 (very sure, 97%)"


def test_warn_gives_the_verdict_and_a_note() -> None:
    text = verdict(unlike("jedi", 0.02), BAND, "warn")
    assert text.startswith("**Jedi** - score 0.020 (very sure, 98%) - but this doesn't look")
    assert "take it lightly" in text
    hedged = verdict(unlike("sith", 0.55), BAND, "warn")
    assert hedged.startswith("**Can't tell** - score 0.550") and "take it lightly" in hedged


def test_off_ignores_the_detector_and_no_detector_means_a_verdict() -> None:
    assert verdict(unlike("sith", 0.973), BAND, "off") == verdict(sith(0.973), BAND)
    assert sith(0.973).in_distribution is None
    assert verdict(sith(0.973), BAND, "refuse") == "**Sith** - score 0.973 (very sure, 97%)"


def test_refusals_keep_the_per_image_line_format() -> None:
    results: list[tuple[str, Prediction | Exception]] = [
        ("vader.png", typical("sith", 0.97)),
        ("cat.jpg", unlike("sith", 0.999)),
        ("notes.txt", NotAnImageError("not an image")),
    ]
    lines = classify_reply(results, BAND).splitlines()
    assert lines[0] == "1. `vader.png`: **Sith** - score 0.970 (very sure, 97%)"
    assert lines[1].startswith("2. `cat.jpg`: **Not a Jedi or a Sith?** - ")
    assert lines[1].endswith("(it would have said Sith, 0.999)")
    assert lines[2] == "3. `notes.txt`: not an image"
    assert lines[3] == SCORE_NOTE
    warned = classify_reply(results, BAND, policy="warn").splitlines()
    assert warned[1].startswith("2. `cat.jpg`: **Sith** - score 0.999") and len(warned) == 4


def test_features_say_the_same_about_an_unlike_image() -> None:
    caption = features_caption("cat.jpg", unlike("sith", 0.9731), None)
    assert "doesn't look like what I learned from" in caption
    assert "(it would have said Sith, 0.973)" in caption
    assert caption.count("`") == 2
    assert "learned" not in features_caption("cat.jpg", unlike("sith", 0.9), None, "off")
    assert replies.features_title(unlike("sith", 0.9731)) == (
        "Sith 0.973 (unlike the training images)"
    )
    assert replies.features_title(typical("jedi", 0.1)) == "Jedi 0.100"
