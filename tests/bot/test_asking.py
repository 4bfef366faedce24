"""When the bot asks for a label (`bot.asking`): which verdicts are unsure (the least sure of
their server's recent ones, or near the detector's threshold), the asking line, and
the per-channel rate (one verdict in `every` at most, `per_hour` an hour at most)."""

from __future__ import annotations

from unittest import mock

import pytest
from discord.ext import commands

from bot.asking import (
    HOUR,
    AskingRate,
    RecentMargins,
    ask_line,
    describe_needs,
    margin,
    near_threshold,
    question,
)
from bot.feedback import Judged
from model.runtime import Prediction

A, B = 11, 12  # two channels


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("distance", "expected"),
    [
        (None, False),  # no detector
        (4.0, False),  # far inside the detector's threshold (10)
        (8.0, True),  # within a fifth of the threshold, inside
        (12.0, True),  # ... and outside
        (12.1, False),  # far outside: plainly unlike, nothing to learn about the edge
        (7.9, False),
    ],
)
def test_near_the_detectors_threshold_means_within_a_fifth_of_it_either_side(
    distance: float | None, expected: bool
) -> None:
    threshold = None if distance is None else 10.0
    prediction = Prediction("sith", 0.97, distance=distance, threshold=threshold)
    assert near_threshold(prediction) is expected


def test_the_margin_is_the_heads_own_score_from_the_decision_not_the_calibrated_one() -> None:
    assert margin(Prediction("sith", 0.55, raw_score=0.9)) == pytest.approx(0.4)
    assert margin(Prediction("jedi", 0.2)) == pytest.approx(0.3)  # no calibration: the score


def sith(raw: float) -> Prediction:
    return Prediction("sith", 0.5 + (raw - 0.5) / 10, raw_score=raw)  # calibration crowds 0.5


def test_a_verdict_asks_when_among_the_least_sure_one_in_every_of_its_servers_recent() -> None:
    recent = RecentMargins(recent=10)
    assert recent.among_least_sure(A, sith(0.9), every=5)  # the first verdict is the least sure
    assert not recent.among_least_sure(A, sith(0.95), every=5)  # surer than the one before
    assert recent.among_least_sure(A, sith(0.6), every=5)  # the least sure so far
    for raw in (0.99, 0.98, 0.97, 0.96, 0.94, 0.93):
        assert not recent.among_least_sure(A, sith(raw), every=5)
    # 10 remembered: the least sure 2 ask; 0.7 is the second least sure, 0.92 the third
    assert recent.among_least_sure(A, sith(0.7), every=5)
    assert not recent.among_least_sure(A, sith(0.92), every=5)
    assert recent.among_least_sure(A, sith(0.9), every=1)  # one in one: every verdict asks
    assert not recent.among_least_sure(A, sith(0.5), every=0)  # 0: never


def test_the_ranking_forgets_old_verdicts_and_keeps_servers_apart() -> None:
    recent = RecentMargins(recent=3, size=2)
    assert recent.among_least_sure(A, sith(0.55), every=2)
    for raw in (0.8, 0.85, 0.9):  # 0.55 drops out of the 3 remembered
        recent.among_least_sure(A, sith(raw), every=2)
    assert recent.among_least_sure(A, sith(0.75), every=2)
    assert recent.among_least_sure(B, sith(0.99), every=2)  # another server: its first verdict
    recent.among_least_sure(3, sith(0.5), every=2)  # a third server: A is forgotten
    assert recent.among_least_sure(A, sith(0.99), every=2)


def test_the_asking_line_names_the_images_of_a_reply_about_several() -> None:
    assert question([1], many=False) == "I'm unsure about this one: which is it?"
    assert question([2], many=True) == "I'm unsure about image 2: which is it?"
    assert question([1, 3, 4], many=True) == "I'm unsure about images 1, 3 and 4: which are they?"


def test_one_verdict_in_every_at_most_asks_counting_every_verdict() -> None:
    rate = AskingRate(clock=Clock())
    asked = [rate.take(A, True, every=5, per_hour=100) for _ in range(12)]
    assert asked == [True, False, False, False, False] * 2 + [True, False]


def test_sure_verdicts_count_towards_the_one_in_every() -> None:
    rate = AskingRate(clock=Clock())
    assert rate.take(A, True, every=3, per_hour=100)
    assert not rate.take(A, False, every=3, per_hour=100)
    assert not rate.take(A, True, every=3, per_hour=100)  # the second verdict since the ask
    assert rate.take(A, True, every=3, per_hour=100)  # the third


def test_a_sure_verdict_never_asks_and_a_new_channel_asks_at_once() -> None:
    rate = AskingRate(clock=Clock())
    assert not rate.take(A, False, every=1, per_hour=3)
    assert rate.take(A, True, every=5, per_hour=3)
    assert rate.take(B, True, every=5, per_hour=3)  # each channel its own rate


def test_at_most_per_hour_asks_in_the_last_hour_per_channel() -> None:
    clock = Clock()
    rate = AskingRate(clock=clock)
    assert [rate.take(A, True, every=1, per_hour=3) for _ in range(5)] == [True] * 3 + [False] * 2
    assert rate.take(B, True, every=1, per_hour=3)
    clock.now += HOUR - 1
    assert not rate.take(A, True, every=1, per_hour=3)
    clock.now += 1  # an hour after the first three
    assert [rate.take(A, True, every=1, per_hour=3) for _ in range(4)] == [True] * 3 + [False]


def test_zero_never_asks() -> None:
    rate = AskingRate(clock=Clock())
    assert not any(rate.take(A, True, every=0, per_hour=3) for _ in range(10))
    assert not any(rate.take(B, True, every=1, per_hour=0) for _ in range(10))


def test_the_rate_remembers_a_bounded_number_of_channels() -> None:
    rate = AskingRate(clock=Clock(), size=2)
    for channel in (1, 2, 3):
        assert rate.take(channel, True, every=1, per_hour=1)
    assert not rate.take(3, True, every=1, per_hour=1)
    assert rate.take(1, True, every=1, per_hour=1)  # forgotten, the least recent: asks again


async def test_a_dm_is_never_asked() -> None:
    bot = mock.Mock(spec_set=commands.Bot)
    judged = [Judged(0, b"image", Prediction("sith", 0.5))]
    assert await ask_line(bot, None, 5, judged) == ""
    assert not bot.mock_calls  # nothing read: no settings, no dataset


def test_what_would_help_most_counts_the_labels_a_retrain_needs_outside_the_holdout() -> None:
    counts = {"jedi": {"train": 25, "holdout": 6}, "sith": {"train": 12, "holdout": 9}}
    unsure_images = [(0.48, "https://discord.com/channels/1/2/3")]
    lines = describe_needs(counts, ("jedi", "sith"), 20, unsure_images)
    assert lines == [
        "**What would help most**",
        "- Jedi: enough for a retrain (25 of 20)",
        "- Sith: 8 more outside the holdout for a retrain (about 10 new labels, as one image "
        "in 5 is held out)",
        "- Least sure here (score: Sith's probability; a second look helps): "
        "[0.48](<https://discord.com/channels/1/2/3>)",
    ]
    assert describe_needs({}, ("jedi",), 5, [])[1].startswith("- Jedi: 5 more outside")
