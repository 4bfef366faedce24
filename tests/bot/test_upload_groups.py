"""!features splits its PNGs into messages that fit the channel's upload limit."""

from __future__ import annotations

import io

import discord
import pytest
from discord.ext import commands

from bot.exts.error_handler import _input_error
from bot.exts.jedisith import LAYERS, MAX_FILES_PER_MESSAGE, _group_files


def files(*sizes: int) -> list[discord.File]:
    return [
        discord.File(io.BytesIO(b"x" * size), filename=f"f{i}.png") for i, size in enumerate(sizes)
    ]


def sizes(groups: list[list[discord.File]]) -> list[list[int]]:
    return [[f.fp.getbuffer().nbytes for f in group] for group in groups]


def test_everything_fits_in_one_message() -> None:
    assert sizes(_group_files(files(300, 200, 100, 50, 25), limit=1000)) == [
        [300, 200, 100, 50, 25]
    ]


def test_groups_stay_under_the_limit_in_order() -> None:
    groups = _group_files(files(400, 400, 400, 100, 700), limit=1000)
    assert sizes(groups) == [[400, 400], [400, 100], [700]]
    assert [f.filename for g in groups for f in g] == [f"f{i}.png" for i in range(5)]
    assert all(sum(group) <= 1000 for group in sizes(groups))


def test_at_most_ten_files_a_message() -> None:
    groups = _group_files(files(*[1] * 23), limit=10_000)
    assert [len(g) for g in groups] == [MAX_FILES_PER_MESSAGE, MAX_FILES_PER_MESSAGE, 3]


def test_no_files_no_messages() -> None:
    assert _group_files([], limit=100) == []


@pytest.mark.parametrize("layer", [0, 6, -1])
def test_layers_outside_one_to_five_are_refused_in_one_line(layer: int) -> None:
    error = commands.RangeError(layer, minimum=1, maximum=LAYERS)
    assert _input_error(error, "layer") == "The layer must be a number from 1 to 5."


def test_a_layer_that_is_not_a_number_is_said_so() -> None:
    error = commands.BadArgument('Converting to "int" failed for parameter "layer".')
    assert _input_error(error, "layer") == "That is not a number."
