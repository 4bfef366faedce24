"""`._pictures` chooses what `!mistakes` shows (every mistake, the surest first, then the right
answers least sure), counts the confusion matrix; `._curve` keeps one point per retrain."""

from __future__ import annotations

from pathlib import Path

from bot.exts.models._curve import CURVE_FILE, MAX_POINTS, add_point, curve_points
from bot.exts.models._heads import HoldoutAnswers
from bot.exts.models._pictures import LEAST_SURE, MAX_TILES, chosen_tiles, confusion
from model.compare import Comparison
from model.runtime import Prediction

CLASSES = ("jedi", "sith")


def answers_of(truth: list[str], scores: list[float]) -> HoldoutAnswers:
    """One model's answers: Sith when its score is above one half."""
    predictions = [Prediction("sith" if s > 0.5 else "jedi", s) for s in scores]
    return HoldoutAnswers([None] * len(truth), truth, [predictions])


def test_mistakes_come_first_then_the_least_sure_right_answers() -> None:
    truth = ["jedi", "jedi", "jedi", "sith", "sith", "sith", "jedi", "sith"]
    scores = [0.6, 0.99, 0.45, 0.2, 0.55, 0.999, 0.01, 0.9]
    answers = answers_of(truth, scores)
    # wrong: 0 (0.6), 1 (0.99), 3 (0.2): the surest first; then the right ones, least sure first
    assert chosen_tiles(answers, 0) == [1, 3, 0, 2, 4, 7, 6][: 3 + LEAST_SURE]
    assert confusion(answers, 0, CLASSES).tolist() == [[2, 2], [1, 3]]


def test_the_picture_holds_at_most_max_tiles() -> None:
    answers = answers_of(["jedi"] * 30, [0.9] * 30)  # all wrong
    assert len(chosen_tiles(answers, 0)) == MAX_TILES


def test_a_servers_curve_keeps_one_point_per_retrain(tmp_path: Path) -> None:
    assert curve_points(tmp_path) == []
    add_point(tmp_path, "head", 20, Comparison(10, 0.5, 0.8, 3, 0), 1)
    add_point(tmp_path, "network", 40, None, None)
    points = curve_points(tmp_path)
    assert [(p.kind, p.labels, p.accuracy, p.version) for p in points] == [
        ("head", 20, 0.8, 1),
        ("network", 40, None, None),
    ]
    for _ in range(MAX_POINTS):
        add_point(tmp_path, "head", 50, None, None)
    assert len(curve_points(tmp_path)) == MAX_POINTS
    (tmp_path / CURVE_FILE).write_text("not json")
    assert curve_points(tmp_path) == []
