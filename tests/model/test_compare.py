"""`model.compare`: the exact McNemar test, the paired interval and the images needed, against
values worked out by hand (and R's `binom.test(b, b + c, alternative = "greater")`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.compare import ALPHA, Comparison, compare, difference_interval, mcnemar_p


@pytest.mark.parametrize(
    ("gained", "lost", "expected"),
    [
        (8, 2, 56 / 1024),  # R: 0.05469
        (9, 1, 11 / 1024),  # R: 0.01074
        (5, 0, 1 / 32),
        (4, 0, 1 / 16),
        (3, 3, 42 / 64),
        (0, 0, 1.0),
        (0, 5, 1.0),
    ],
)
def test_the_exact_one_sided_mcnemar_p_value(gained: int, lost: int, expected: float) -> None:
    assert mcnemar_p(gained, lost) == pytest.approx(expected, abs=1e-12)


def test_the_interval_adds_half_an_image_to_each_cell() -> None:
    low, high = difference_interval(0, 0, 10)  # never disagree: still about ±16 points
    assert (low, high) == pytest.approx((-1.959964 / 12, 1.959964 / 12), abs=1e-6)
    low, high = difference_interval(5, 0, 10)
    d, s = 5 / 12, math.sqrt((6 / 12 - (5 / 12) ** 2) / 12)
    assert (low, high) == pytest.approx((d - 1.959964 * s, d + 1.959964 * s), abs=1e-6)
    assert difference_interval(40, 0, 40)[1] <= 1.0
    with pytest.raises(ValueError):
        difference_interval(3, 3, 5)


def test_equal_models_on_a_small_holdout_are_not_settled() -> None:
    equal = compare(["jedi"] * 6 + ["sith"] * 5, ["jedi"] * 6 + ["sith"] * 5, ["jedi"] * 11)
    assert (equal.before, equal.images, equal.gained) == (1.0, 11, 0)
    assert equal.lost == 5 and equal.worse  # five lost, none gained: surely worse
    same = Comparison(images=11, before=1.0, after=1.0, gained=0, lost=0)
    assert not same.better and not same.worse
    # 1.645² × (1/13) / 0.05² = 83.3: about 84 images would tell a 5-point gain apart
    assert same.images_needed() == 84
    assert same.summary() == (
        "holdout accuracy 100.0% → 100.0% on 11 held-out images: +0.0 points (95% interval "
        "-15.1 to +15.1)"
    )
    assert "about 84 held-out images (73 more) would settle it" in same.verdict()


def test_a_clear_gain_is_settled_and_a_small_one_says_how_many_images_it_needs() -> None:
    clear = Comparison(images=11, before=0.0, after=1.0, gained=11, lost=0)
    assert clear.better and clear.images_needed() is None
    assert clear.verdict() == "surely better (p = 0.000)"
    small = Comparison(images=40, before=0.8, after=0.85, gained=4, lost=2)
    assert not small.better and small.p_value == pytest.approx(22 / 64)
    # 1.645² × (7/42) / 0.05² = 180.3
    assert small.images_needed() == 181


def test_the_test_publishes_an_equal_model_at_most_alpha_of_the_time() -> None:
    rng = np.random.default_rng(0)
    published = 0
    for _ in range(2000):
        right = rng.random((2, 20)) < 0.8  # two equally good models, independent mistakes
        gained = int((right[1] & ~right[0]).sum())
        lost = int((right[0] & ~right[1]).sum())
        published += mcnemar_p(gained, lost) < ALPHA
    assert published / 2000 <= ALPHA


def test_compare_needs_one_answer_of_each_model_per_image() -> None:
    with pytest.raises(ValueError):
        compare(["jedi"], ["jedi", "sith"], ["jedi"])
    with pytest.raises(ValueError):
        compare([], [], [])
