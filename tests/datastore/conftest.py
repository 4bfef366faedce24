"""Fixtures for the dataset tests: a store in a fresh folder, and small real images.

A test that takes `store`, `database_url` or `database` runs on SQLite and on PostgreSQL (see
`database` in tests/conftest.py): `pytest tests/datastore -k sqlite` runs one of them."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset import DatasetStore, is_holdout

MakeImage = Callable[..., bytes]


def image_bytes(seed: int, image_format: str = "PNG", size: tuple[int, int] = (24, 16)) -> bytes:
    """A small noise image, different for every seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format)
    return buffer.getvalue()


@pytest.fixture
def make_image() -> MakeImage:
    return image_bytes


@pytest.fixture
def split_images() -> Callable[[bool, int], list[bytes]]:
    """`n` distinct images that all fall in the holdout (True) or the training split (False)."""

    def find(holdout: bool, n: int, start: int = 10_000) -> list[bytes]:
        found, seed = [], start
        while len(found) < n:
            data = image_bytes(seed)
            if is_holdout(hashlib.sha256(data).hexdigest()) == holdout:
                found.append(data)
            seed += 1
        return found

    return find


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def database_url(database, data_dir: Path) -> str:
    """The database of the dataset in `data_dir`: its SQLite file, or a PostgreSQL schema."""
    return database.url(data_dir)


@pytest.fixture
def store(data_dir: Path, database_url: str) -> Iterator[DatasetStore]:
    with DatasetStore.open(data_dir, database_url) as opened:
        yield opened
