"""When the bot asks for a label (`bot.asking`): which verdicts are unsure, the asking line, and
the per-channel rate (one verdict in `every` at most, `per_hour` an hour at most)."""

from __future__ import annotations

from unittest import mock

import pytest
from discord.ext import commands

from bot.asking import HOUR, AskingRate, ask_line, describe_needs, question, unsure
from bot.feedback import Judged
from model.runtime import Prediction

BAND = 0.1
A, B = 11, 12  # two channels


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("score", "distance", "expected"),
    [
        (0.5, None, True),  # on the decision
        (0.62, None, True),  # inside the band
        (0.69, None, True),  # near the band: within band + 0.1 of 0.5
        (0.31, None, True),
        (0.71, None, False),
        (0.97, None, False),
        (0.03, 4.0, False),  # sure, and far inside the detector's threshold (10)
        (0.97, 8.0, True),  # sure, but within a fifth of the threshold, inside
        (0.97, 12.0, True),  # ... and outside
        (0.97, 12.1, False),  # far outside: plainly unlike, nothing to learn about the edge
        (0.97, 7.9, False),
    ],
)
def test_unsure_means_near_the_decision_or_near_the_detectors_threshold(
    score: float, distance: float | None, expected: bool
) -> None:
    threshold = None if distance is None else 10.0
    prediction = Prediction("sith", score, distance=distance, threshold=threshold)
    assert unsure(prediction, BAND) is expected


def test_a_wider_band_widens_what_is_unsure() -> None:
    assert not unsure(Prediction("sith", 0.75), 0.1)
    assert unsure(Prediction("sith", 0.75), 0.2)
    assert unsure(Prediction("sith", 0.59), 0.0)  # no band: still near the decision


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
