"""`NetworkJudge`: a server's candidate network is published into its versions only if it is
surely better on the server's holdout than what the server is served now (`force`: anyway), and
the reply names the kind of model made, the images, the holdout, both accuracies and the
interval of their difference."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

import pytest
from heads_support import make_head

from bot.errors import UserFacingError
from bot.exts.models._default import make_default
from bot.exts.models._heads import HeadTrainer, HoldoutAnswers
from bot.exts.models._networks import NetworkJudge, ending_text
from bot.server_models import (
    HeadCache,
    current_kind,
    default_folder,
    publish_head,
    publish_network,
    server_folder,
)
from bot.settings import Settings
from dataset import DatasetStore, GuildSettings
from model.bundle import DEFAULT_MODEL_DIR, versions
from model.head import Head
from model.runtime import Prediction, ServerNetwork
from model.worker import ModelWorker
from training.protocol import Status, TrainerResult

COUNTS = {"jedi": 120, "sith": 120}
GUILD = 42


def answering(before: float, after: float, images: int = 40) -> HoldoutAnswers:
    """Answers to `images` Jedi held-out images: the current model gets the first `before` of
    them right, the network the last `after` (so they disagree as much as they can)."""
    right_before, right_after = round(before * images), round(after * images)
    current = ["jedi" if i < right_before else "sith" for i in range(images)]
    network = ["jedi" if i >= images - right_after else "sith" for i in range(images)]
    return HoldoutAnswers(
        [None] * images,
        ["jedi"] * images,
        [[Prediction(label, 0.5) for label in current], [Prediction(n, 0.5) for n in network]],
    )


def judge_scoring(tmp_path: Path, before: float, after: float) -> tuple[NetworkJudge, HeadCache]:
    """A judge whose holdout accuracies are `before` (the current model) and `after` (the
    network) on 40 images; the server has a head as its version 1."""
    publish_head(make_head(0), server_folder(tmp_path, GUILD))
    store = mock.create_autospec(DatasetStore, instance=True, spec_set=True)
    store.labelled.return_value = []
    fitter = mock.create_autospec(HeadTrainer, instance=True, spec_set=True)
    fitter.holdout_answers.return_value = answering(before, after)
    worker = mock.create_autospec(ModelWorker, instance=True, spec_set=True)
    heads = HeadCache(tmp_path, 1 << 20)
    settings = Settings(token="MTIz.secret-token-value.XYZ", data_dir=tmp_path)  # type: ignore[call-arg]
    return NetworkJudge(store, settings, worker, heads, fitter), heads


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """The trainer's candidate: a model folder with one version (the shipped network's)."""
    folder = tmp_path / "run" / "candidate"
    publish_network(DEFAULT_MODEL_DIR, folder, {})
    return folder


async def test_a_worse_network_is_not_published(tmp_path: Path, candidate: Path) -> None:
    judge, _ = judge_scoring(tmp_path, before=0.9, after=0.6)
    outcome = await judge.judge(GUILD, candidate, COUNTS)
    assert outcome.published is None and outcome.status == "refused"
    assert versions(server_folder(tmp_path, GUILD)) == [1]
    (_, current, new), _ = judge.fitter.holdout_answers.call_args  # type: ignore[attr-defined]
    assert isinstance(current, Head) and isinstance(new, ServerNetwork)
    assert outcome.text("!") == (
        "**Not published**: the new model is worse than version 1 (a head) on the held-out "
        "images. Holdout accuracy 90.0% (version 1 (a head)) → 60.0% on 40 held-out images: "
        "-30.0 points (95% interval -48.1 to -9.0), p = 1.00. Version 1 (a head) keeps serving "
        "this server. Next: label more images (`!dataset` says which help most), then "
        "`!retrain network` again; `!retrain network force` publishes it anyway.\n"
        "-# Made a network trained on your 240 images (120 Jedi + 120 Sith)."
    )


async def test_a_network_only_as_good_is_not_published_and_says_what_would_settle_it(
    tmp_path: Path, candidate: Path
) -> None:
    judge, _ = judge_scoring(tmp_path, before=0.8, after=0.85)
    outcome = await judge.judge(GUILD, candidate, COUNTS)
    assert outcome.published is None and versions(server_folder(tmp_path, GUILD)) == [1]
    text = outcome.text("!")
    assert "Holdout accuracy 80.0% (version 1 (a head)) → 85.0% on 40 held-out images: +5.0" in text
    assert "(95% interval " in text and "is not surely better than version 1" in text
    assert ", p = " in text
    assert re.search(r"about \d+ held-out images \(\d+ more\) would settle it", text), text


async def test_a_better_network_becomes_the_servers_next_version(
    tmp_path: Path, candidate: Path
) -> None:
    judge, heads = judge_scoring(tmp_path, before=0.6, after=0.9)
    outcome = await judge.judge(GUILD, candidate, COUNTS, figures={"training": 7})
    folder = server_folder(tmp_path, GUILD)
    assert outcome.published == 2 and current_kind(folder) == "network"
    assert outcome.text("!").startswith(
        "**New model for this server: version 2**, a network trained on your 240 images "
        "(120 Jedi + 120 Sith); holdout accuracy 60.0% (version 1 (a head)) → 90.0% on 40"
    )
    served = heads.get(GUILD)
    assert isinstance(served, ServerNetwork)
    holdout = served.figures["holdout"]
    assert (holdout["accuracy"], holdout["images"], holdout["before"]) == (0.9, 40, 0.6)
    assert (holdout["gained"], holdout["lost"]) == (16, 4) and holdout["p"] < 0.05
    assert served.figures["training"] == 7 and served.figures["per_class"] == COUNTS


async def test_force_publishes_a_worse_network(tmp_path: Path, candidate: Path) -> None:
    judge, _ = judge_scoring(tmp_path, before=0.9, after=0.6)
    outcome = await judge.judge(GUILD, candidate, COUNTS, force=True)
    assert outcome.published == 2
    assert current_kind(server_folder(tmp_path, GUILD)) == "network"


def test_a_servers_network_cannot_become_the_default_head(tmp_path: Path) -> None:
    folder = server_folder(tmp_path, GUILD)
    publish_head(make_head(0), folder)
    publish_network(DEFAULT_MODEL_DIR, folder, {})
    store = mock.create_autospec(DatasetStore, instance=True, spec_set=True)
    store.guild_settings.return_value = GuildSettings(GUILD, sharing=True)
    with pytest.raises(UserFacingError, match=r"^Server 42's version 2 is a network of its own"):
        make_default(store, tmp_path, GUILD, None, "b" * 64, "!")
    assert not default_folder(tmp_path).exists()


def test_a_training_without_a_candidate_tells_the_server_without_the_bots_folders() -> None:
    stopped = TrainerResult(
        status=Status.CANCELLED, reason="cancelled during training; /srv/data/trainings/3/x"
    )
    assert ending_text(stopped, "eve", "!") == (
        "**Training cancelled** by eve. This server's model and its images are unchanged."
    )
    failed = TrainerResult(status=Status.FAILED, reason="--model /srv/data/trainings/3 is a file")
    text = ending_text(failed, None, "!")
    assert text.startswith("**Training failed**") and "/srv" not in text
