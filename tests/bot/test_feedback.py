"""The feedback buttons: what their custom_ids carry, which buttons an image gets, and the
bounded memory of recently judged images."""

from __future__ import annotations

import re

import discord
import pytest

from bot.feedback import (
    MAX_ROWS,
    TEMPLATE,
    Judged,
    RecentImages,
    Vote,
    VoteButton,
    feedback_view,
    sha16,
    votes_for,
)
from model.runtime import Prediction

NAMES = ("jedi", "sith")
BAND = 0.1


def judged(index: int = 0, score: float = 0.97, data: bytes = b"image", **extra) -> Judged:
    label = "sith" if score >= 0.5 else "jedi"
    return Judged(index, data, Prediction(label, score, **extra))


def test_a_vote_survives_its_custom_id() -> None:
    vote = Vote("sith", True, 1234567890123456789, 7, "0123456789abcdef")
    match = re.fullmatch(TEMPLATE, vote.custom_id)
    assert match is not None
    assert Vote.parse(match) == vote
    assert len(vote.custom_id) <= 100  # Discord's limit


def test_the_biggest_custom_id_fits_discords_limit() -> None:
    vote = Vote("x" * 20, False, 10**20 - 1, 99, "f" * 16)
    assert re.fullmatch(TEMPLATE, vote.custom_id)
    assert len(vote.custom_id) <= 100


@pytest.mark.parametrize(
    "custom_id",
    [
        "jedisith:vote:sith:r:1:0:0123456789ABCDEF",  # upper-case hash
        "jedisith:vote:sith:x:1:0:0123456789abcdef",  # unknown kind
        "jedisith:vote:sith:r:1:0:0123",  # short hash
        "other:vote:sith:r:1:0:0123456789abcdef",
    ],
)
def test_foreign_or_damaged_custom_ids_do_not_match(custom_id: str) -> None:
    assert re.fullmatch(TEMPLATE, custom_id) is None


def test_a_verdict_gets_right_and_both_corrections() -> None:
    buttons = votes_for(judged(score=0.97), 55, NAMES, BAND, "refuse")
    assert [label for _, label in buttons] == ["Right", "It's a Jedi", "It's a Sith", "Neither"]
    right = buttons[0][0]
    assert right.right and right.label == "sith" and right.message_id == 55
    assert {vote.sha16 for vote, _ in buttons} == {sha16(b"image")}
    assert len({vote.custom_id for vote, _ in buttons}) == 4  # unique within the message
    assert buttons[-1][0].label == "neither" and not buttons[-1][0].right


def test_no_right_button_without_a_verdict() -> None:
    cant_tell = votes_for(judged(score=0.55), 1, NAMES, BAND, "refuse")
    refused = votes_for(judged(score=0.99, distance=9.0, threshold=1.0), 1, NAMES, BAND, "refuse")
    warned = votes_for(judged(score=0.99, distance=9.0, threshold=1.0), 1, NAMES, BAND, "warn")
    assert [label for _, label in cant_tell] == ["It's a Jedi", "It's a Sith", "Neither"]
    assert [label for _, label in refused] == ["Neither", "It's a Jedi", "It's a Sith"]
    assert warned[0][1] == "Right"  # "warn" still gives the verdict
    assert warned[-1][1] == "Neither"  # not refused: Neither stays last


def test_the_view_has_a_row_per_image_and_at_most_five() -> None:
    images = [judged(index=i, data=bytes([i])) for i in range(7)]
    view = feedback_view(images, 9, NAMES, BAND, "refuse")
    assert view is not None and view.timeout is None and view.is_persistent()
    rows = view.to_components()
    assert len(rows) == MAX_ROWS
    first = rows[0]["components"]
    assert [b["label"] for b in first] == [
        "1. Right",
        "1. It's a Jedi",
        "1. It's a Sith",
        "1. Neither",
    ]
    assert all(isinstance(item, VoteButton) for item in view.children)


def test_one_image_has_plain_labels_and_none_have_no_view() -> None:
    view = feedback_view([judged()], 9, NAMES, BAND, "refuse")
    assert view is not None
    labels = [b["label"] for b in view.to_components()[0]["components"]]
    assert labels == ["Right", "It's a Jedi", "It's a Sith", "Neither"]
    assert feedback_view([], 9, NAMES, BAND, "refuse") is None


def test_a_button_rebuilds_its_vote() -> None:
    vote = Vote("jedi", False, 3, 1, sha16(b"x"))
    button = VoteButton(discord.ui.Button(custom_id=vote.custom_id, label="It's a Jedi"))
    assert button.vote == vote


def test_recent_images_forget_the_oldest_past_the_limit() -> None:
    recent = RecentImages(limit=10)
    first = recent.add(b"aaaa")
    second = recent.add(b"bbbb")
    assert recent.get(first) == b"aaaa" and recent.size == 8
    recent.add(b"cccc")  # 12 bytes: the oldest goes
    assert recent.get(first) is None and recent.get(second) == b"bbbb"
    assert recent.size == 8 and len(recent) == 2
    assert recent.add(b"x" * 11) == sha16(b"x" * 11)  # larger than the limit: not kept
    assert len(recent) == 2


def test_recent_images_keep_one_copy_and_refresh_it() -> None:
    recent = RecentImages(limit=8)
    key = recent.add(b"aaaa")
    recent.add(b"bbbb")
    recent.add(b"aaaa")  # seen again: now the newest
    recent.add(b"cccc")
    assert recent.get(key) == b"aaaa" and recent.size == 8
