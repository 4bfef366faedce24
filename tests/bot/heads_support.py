"""A small head for the bot's tests: fitted on separable random features, in milliseconds."""

from __future__ import annotations

import numpy as np

from model.head import Head, fit_head

BACKBONE = "a" * 64  # the network hash the tests' heads claim


def make_head(seed: int, flip: bool = False, backbone: str = BACKBONE) -> Head:
    """A head whose answer is the sign of the first feature (the other way round if `flip`)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], 10)
    embedding = rng.normal(size=(20, 32))
    embedding[:, 0] += 3 * (2 * labels - 1)
    stats = rng.normal(size=(20, 8))
    return fit_head(
        {"embedding": embedding, "stats": stats},
        1 - labels if flip else labels,
        ("jedi", "sith"),
        backbone=backbone,
    )
