"""The label rule and the holdout split, as pure functions."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from dataset import CLASS_NAMES, HOLDOUT_PERCENT, DatasetError, is_holdout, tally
from dataset.labels import NEITHER, answers, check_class_names, majority, split_of

MOD, MEMBER = True, False


def test_the_majority_of_all_votes_decides_without_moderators() -> None:
    result = tally([("jedi", MEMBER), ("jedi", MEMBER), ("sith", MEMBER)])
    assert result.label == "jedi"
    assert result.votes == {"jedi": 2, "sith": 1}
    assert result.moderator_votes == {"jedi": 0, "sith": 0}
    assert not result.conflict


def test_a_moderator_outvotes_any_number_of_members() -> None:
    result = tally([("jedi", MEMBER)] * 5 + [("sith", MOD)])
    assert result.label == "sith"
    assert result.votes == {"jedi": 5, "sith": 1}
    assert result.moderator_votes == {"jedi": 0, "sith": 1}


def test_the_moderators_majority_decides_among_moderators() -> None:
    votes = [("sith", MOD), ("sith", MOD), ("jedi", MOD), ("jedi", MEMBER), ("jedi", MEMBER)]
    assert tally(votes).label == "sith"


def test_a_tie_at_the_deciding_level_is_a_conflict() -> None:
    members_tied = tally([("jedi", MEMBER), ("sith", MEMBER)])
    assert members_tied.label is None and members_tied.conflict
    # The members agree, but the moderators are split: the moderators are the deciding level.
    moderators_tied = tally([("jedi", MOD), ("sith", MOD)] + [("jedi", MEMBER)] * 4)
    assert moderators_tied.label is None and moderators_tied.conflict
    assert moderators_tied.votes == {"jedi": 5, "sith": 1}


def test_no_votes_is_unlabelled_not_a_conflict() -> None:
    result = tally([])
    assert result.label is None and not result.conflict
    assert result.votes == {"jedi": 0, "sith": 0}
    assert majority(Counter()) is None


def test_other_class_names() -> None:
    result = tally([("cat", MEMBER)], class_names=("cat", "dog"))
    assert result.label == "cat" and result.votes == {"cat": 1, "dog": 0}


def test_the_holdout_is_a_fixed_share_chosen_by_hash() -> None:
    assert CLASS_NAMES == ("jedi", "sith") and HOLDOUT_PERCENT == 20
    hashes = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(10_000)]
    held = [sha for sha in hashes if is_holdout(sha)]
    assert 0.18 < len(held) / len(hashes) < 0.22
    for sha in hashes[:500]:
        assert is_holdout(sha) == (int(sha[:8], 16) % 100 < HOLDOUT_PERCENT)
        assert split_of(sha) == ("holdout" if is_holdout(sha) else "train")
    assert is_holdout("00000000" + "f" * 56) and not is_holdout("00000063" + "0" * 56)  # 0, 99


def test_neither_is_an_answer_of_its_own() -> None:
    result = tally([("neither", MEMBER), ("neither", MEMBER), ("jedi", MEMBER)])
    assert result.label == "neither" and not result.conflict
    assert result.votes == {"jedi": 1, "sith": 0, "neither": 2}
    assert tally([("jedi", MEMBER)]).votes == {"jedi": 1, "sith": 0}  # unchanged without it
    tied = tally([("neither", MEMBER), ("sith", MEMBER)])
    assert tied.label is None and tied.conflict
    moderated = tally([("neither", MOD)] + [("jedi", MEMBER)] * 3)
    assert moderated.label == "neither"
    assert tally([("jedi", MOD), ("neither", MOD)] + [("jedi", MEMBER)] * 3).conflict


def test_neither_is_no_class_name() -> None:
    with pytest.raises(DatasetError, match="neither"):
        check_class_names(("jedi", "neither"))
    assert answers(CLASS_NAMES) == ("jedi", "sith", NEITHER)
