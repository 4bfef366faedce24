"""The Why? buttons under a verdict: one per judged image, on its row, beside its vote buttons."""

from __future__ import annotations

import re

from bot.feedback import WHY_TEMPLATE, Judged, add_why_buttons, feedback_view, sha16
from model.runtime import Prediction


def judged(index: int, data: bytes) -> Judged:
    return Judged(index, data, Prediction("sith", 0.97))


def test_without_vote_buttons_each_image_gets_a_why_button() -> None:
    images = [judged(i, f"image {i}".encode()) for i in range(7)]
    view = add_why_buttons(None, images, 1234)
    assert view is not None
    rows = view.to_components()
    assert len(rows) == 5  # Discord's five rows: the first five images
    for row, item in zip(rows, images, strict=False):
        [button] = row["components"]
        assert button["label"] == f"{item.index + 1}. Why?"
        match = re.fullmatch(WHY_TEMPLATE, button["custom_id"])
        assert match is not None
        assert (match["message"], match["index"], match["sha"]) == (
            "1234",
            str(item.index),
            sha16(item.data),
        )


def test_beside_the_vote_buttons_why_comes_last_on_each_row() -> None:
    images = [judged(0, b"a"), judged(2, b"b")]
    votes = feedback_view(images, 99, ("jedi", "sith"), 0.1, "refuse")
    view = add_why_buttons(votes, images, 99)
    rows = view.to_components()  # type: ignore[union-attr]
    assert [row["components"][-1]["label"] for row in rows] == ["1. Why?", "3. Why?"]
    assert all(len(row["components"]) == 5 for row in rows)


def test_no_image_no_button() -> None:
    assert add_why_buttons(None, [], 1) is None
