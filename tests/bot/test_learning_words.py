"""`!teach`'s summary and a vote's answer: what was taught, refused and why, and why an image's
label is not the one just given."""

from __future__ import annotations

from bot.learning_words import Taught, retrain_needs, teach_summary, thanks
from dataset import VoteOutcome


def outcome(label: str | None, **votes: int) -> VoteOutcome:
    return VoteOutcome(changed=False, previous=None, label=label, votes=votes, conflict=False)


def test_one_line_counts_taught_known_and_refused_with_why() -> None:
    taught = [
        Taught("`a.png`", outcome("jedi", jedi=1), new=True),
        Taught("`b.png`", outcome("jedi", jedi=2)),
        Taught("`c.png`", outcome("sith", jedi=1, sith=1)),
        Taught("`d.png`", outcome(None, jedi=1, sith=1)),
        Taught("`n.png`", refused="not an image."),
        Taught("`m.txt`", refused="not an image"),
    ]
    assert teach_summary(taught, "jedi") == (
        "Taught 1 new image as **Jedi**, 3 already known; refused 2, `n.png`, `m.txt`: not an "
        "image. Labelled otherwise: `c.png` stays Sith: a moderator's vote decided (1 Jedi, "
        "1 Sith); `d.png` waits for a moderator (votes disagree: 1 Jedi, 1 Sith)."
    )
    assert teach_summary(taught[4:], "jedi") == (
        "Taught nothing; refused 2, `n.png`, `m.txt`: not an image."
    )
    assert teach_summary(taught[1:2], "jedi") == (
        "Taught **Jedi** on 1 image I already knew. Its label: Jedi (2 Jedi)."
    )


def test_a_losing_vote_says_why() -> None:
    by_moderator = thanks(outcome("jedi", jedi=1, sith=1), "sith", "!")
    assert by_moderator.startswith(
        "Thanks! Kept with your label, **Sith**. Its label stays Jedi: a moderator's vote "
        "decided (1 Jedi, 1 Sith)."
    )
    by_most = thanks(outcome("jedi", jedi=3, sith=1), "sith", "!")
    assert "Its label stays Jedi: most votes say so (3 Jedi, 1 Sith)." in by_most
    agreed = thanks(outcome("sith", sith=2), "sith", "!")
    assert "Its label: Sith (2 Sith)." in agreed


def test_what_each_class_needs_before_a_retrain() -> None:
    counts = {"jedi": {"train": 5, "holdout": 1}, "sith": {"train": 20}}
    assert retrain_needs(counts, ("jedi", "sith"), 20, "!") == (
        "-# Before `!retrain`: 15 more Jedi outside the holdout (`!dataset` says more)."
    )
    assert retrain_needs({}, ("jedi", "sith"), 20, "!").startswith(
        "-# Before `!retrain`: 20 more Jedi, 20 more Sith outside"
    )
    assert (
        retrain_needs(counts, ("jedi", "sith"), 5, "!") == "-# Enough of each class for `!retrain`."
    )
