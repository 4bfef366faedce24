"""The head gate's words and rule: published only when surely better (`force`: anyway); with no
held-out images nothing is published, and the reply says so."""

from __future__ import annotations

from bot.exts.models._heads import FitOutcome, holdout_figures, surely_better
from model.compare import Comparison

EQUAL = Comparison(images=12, before=1.0, after=1.0, gained=0, lost=0)
BETTER = Comparison(images=12, before=0.0, after=1.0, gained=12, lost=0)


def test_only_a_surely_better_head_passes_the_gate() -> None:
    assert surely_better(BETTER, force=False)
    assert not surely_better(EQUAL, force=False)
    assert not surely_better(None, force=False)  # no held-out images: nothing to show
    assert surely_better(None, force=True) and surely_better(EQUAL, force=True)


def test_a_refused_head_says_why_and_what_would_settle_it() -> None:
    outcome = FitOutcome(None, 36, {"jedi": 18, "sith": 18}, EQUAL, "the default model", 0.4)
    assert outcome.status == "refused" and outcome.holdout == 12
    assert outcome.text("!") == (
        "**Not published**: the new model is not surely better than the default model on the "
        "held-out images. Holdout accuracy 100.0% (the default model) → 100.0% on 12 held-out "
        "images: +0.0 points (95% interval -14.0 to +14.0), p = 1.00; about 78 held-out images "
        "(66 more) would settle it, if the models disagree as often as here (0 of 12). The "
        "default model keeps serving this server. Next: label more images (`!dataset` says "
        "which help most), then `!retrain` again; `!retrain force` publishes it anyway.\n"
        "-# Made a head on the shared network, learned from 36 labelled images (18 Jedi + 18 "
        "Sith) in 0.4 s."
    )
    unjudged = FitOutcome(None, 36, {"jedi": 18, "sith": 18}, None, "the default model", 0.4)
    assert "no held-out images to judge it on yet" in unjudged.text("!")
    assert unjudged.record()["holdout"] == 0 and unjudged.record()["after"] is None


def test_a_published_heads_figures_keep_the_paired_counts() -> None:
    figures = holdout_figures(BETTER)
    assert figures["accuracy"] == 1.0 and figures["before"] == 0.0 and figures["images"] == 12
    assert (figures["gained"], figures["lost"]) == (12, 0) and figures["p"] < 0.05
    assert holdout_figures(None) == {"accuracy": None, "images": 0, "before": None}
