"""The operator's default model: a server without a head of its own is served the default head
(a consenting server's head, `!default from`), or the network's own verdict when there is none or
it was learned on another network; `!rollback shared network|head N`; what `!model shared` says;
and the operator's holdout (DEFAULT_HOLDOUT_DIR) judging `!retrain shared`."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from heads_support import BACKBONE, make_head

from bot.errors import UserFacingError
from bot.exts.models._default import (
    current_default,
    default_lines,
    make_default,
    parse_from,
    rollback_default,
    was_served,
)
from bot.exts.models._retrainer import Job, Retrainer
from bot.exts.models._words import RetrainOptions, final_text
from bot.server_models import (
    HeadCache,
    current_head_version,
    default_folder,
    publish_default,
    publish_head,
    server_folder,
)
from dataset import DatasetStore
from model.head import HeadError
from training.protocol import HoldoutScore, Status, TrainerResult, WorkFolder

OTHER = "b" * 64


def cache(data_dir: Path, backbone: str | None = BACKBONE) -> HeadCache:
    return HeadCache(data_dir, 10 * 1024 * 1024, lambda: backbone)


# -- serving ------------------------------------------------------------------------------------


def test_a_server_without_a_head_gets_the_default_head_and_one_with_a_head_its_own(
    tmp_path: Path,
) -> None:
    publish_head(make_head(0), server_folder(tmp_path, 1))  # A: its own, "Jedi" on the right
    publish_head(make_head(1, flip=True), server_folder(tmp_path, 2))  # B: its own, flipped
    heads = cache(tmp_path)
    assert heads.get(3) is None and heads.get(None) is None  # no default head: the network's
    publish_default(tmp_path, 1, 1, BACKBONE)  # A's version 1 becomes the default
    served = heads.get(3)  # C, never taught
    assert served is not None and served.weights[0] > 0
    assert served.figures["source_guild"] == 1 and served.figures["source_version"] == 1
    assert heads.get(None) is served  # a DM is served the default model too
    own = heads.get(2)
    assert own is not None and own.weights[0] < 0  # B keeps its own
    assert heads.own(3) is None and heads.default() is served
    assert 0 not in heads.held()  # the default head is not a server's


def test_going_back_to_the_network_and_to_a_default_head(tmp_path: Path) -> None:
    publish_head(make_head(0), server_folder(tmp_path, 1))
    publish_head(make_head(1, flip=True), server_folder(tmp_path, 1))
    heads = cache(tmp_path)
    assert publish_default(tmp_path, 1, 1, BACKBONE) == 1
    assert publish_default(tmp_path, 1, 2, BACKBONE) == 2
    assert was_served(tmp_path) == "default head version 2"
    assert heads.get(9).weights[0] < 0  # type: ignore[union-attr]
    assert rollback_default(tmp_path, None).startswith("The network's own verdict is served")
    assert heads.get(9) is None and current_head_version(default_folder(tmp_path)) is None
    assert was_served(tmp_path) == "the network's own verdict"
    with pytest.raises(UserFacingError, match="served by default already"):
        rollback_default(tmp_path, None)
    assert rollback_default(tmp_path, 1) == "Default head version 1 is served by default again"
    assert heads.get(9).weights[0] > 0  # type: ignore[union-attr]
    with pytest.raises(UserFacingError, match="already the current one"):
        rollback_default(tmp_path, 1)
    with pytest.raises(UserFacingError, match="no version 7"):
        rollback_default(tmp_path, 7)


def test_a_default_head_of_another_network_is_not_applied(tmp_path: Path, caplog) -> None:
    publish_head(make_head(0, backbone=OTHER), server_folder(tmp_path, 1))
    publish_head(make_head(1, flip=True, backbone=OTHER), server_folder(tmp_path, 2))
    publish_default(tmp_path, 1, 1, OTHER)  # made default while OTHER was served
    heads = cache(tmp_path, BACKBONE)  # the network served now is another one
    with caplog.at_level(logging.WARNING, logger="bot.server_models"):
        assert heads.get(3) is None and heads.get(4) is None and heads.get(None) is None
    assert caplog.text.count("the default head is not applied") == 1  # one log line
    assert heads.get(2) is not None  # a server's own head: the worker checks it per verdict
    assert cache(tmp_path, OTHER).get(3) is not None  # on its own network it is applied
    shown = current_default(tmp_path, BACKBONE)
    assert shown is not None and not shown.applied
    assert "it is not applied" in "\n".join(default_lines(shown, "the network", True, "!"))


def test_a_head_of_another_network_cannot_be_made_the_default(tmp_path: Path) -> None:
    publish_head(make_head(0, backbone=OTHER), server_folder(tmp_path, 1))
    with pytest.raises(HeadError, match="learned on the network"):
        publish_default(tmp_path, 1, 1, BACKBONE)
    assert current_head_version(default_folder(tmp_path)) is None


# -- consent ------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    with DatasetStore.open(tmp_path / "data") as opened:
        yield opened


def test_a_servers_model_becomes_the_default_only_with_its_consent(
    tmp_path: Path, store: DatasetStore
) -> None:
    publish_head(make_head(0), server_folder(tmp_path, 1))
    publish_head(make_head(1, flip=True), server_folder(tmp_path, 1))
    with pytest.raises(UserFacingError, match=r"Server 1 does not share.*`!dataset share on`"):
        make_default(store, tmp_path, 1, None, BACKBONE, "!")
    assert current_head_version(default_folder(tmp_path)) is None
    store.update_guild_settings(1, by=5, sharing=True)  # its managers consent
    assert make_default(store, tmp_path, 1, None, BACKBONE, "!") == (1, 2)  # its current one
    assert make_default(store, tmp_path, 1, 1, BACKBONE, "!") == (2, 1)  # or the one named
    with pytest.raises(UserFacingError, match=r"no version 4 \(kept: 1, 2\)"):
        make_default(store, tmp_path, 1, 4, BACKBONE, "!")
    with pytest.raises(UserFacingError, match="learned on the network"):
        make_default(store, tmp_path, 1, 1, OTHER, "!")
    store.update_guild_settings(1, by=5, sharing=False)  # consent withdrawn
    with pytest.raises(UserFacingError, match="does not share"):
        make_default(store, tmp_path, 1, 1, BACKBONE, "!")
    store.update_guild_settings(3, by=6, sharing=True)  # shares, but has no model of its own
    with pytest.raises(UserFacingError, match="not a model of its own"):
        make_default(store, tmp_path, 3, None, BACKBONE, "!")
    with pytest.raises(UserFacingError, match="no dataset"):
        make_default(None, tmp_path, 1, 1, BACKBONE, "!")


def test_default_from_is_parsed_strictly() -> None:
    assert parse_from(["from", "123"], "!") == (123, None)
    assert parse_from(["FROM", "123", "2"], "!") == (123, 2)
    for words in ([], ["123"], ["from"], ["from", "abc"], ["to", "1"], ["from", "1", "2", "3"]):
        with pytest.raises(UserFacingError, match="default from SERVER_ID"):
            parse_from(words, "!")


def test_model_shared_names_the_source_server_to_the_operator_only(tmp_path: Path) -> None:
    publish_head(make_head(0), server_folder(tmp_path, 1234))
    assert default_lines(current_default(tmp_path, BACKBONE), "the network", True, "!")[
        0
    ].startswith("Served by default: **the network**, its own verdict (no default head")
    publish_default(tmp_path, 1234, 1, BACKBONE)
    head = current_default(tmp_path, BACKBONE)
    assert head is not None and head.applied and head.source_guild == 1234
    operator = "\n".join(default_lines(head, "the network version 3", True, "!"))
    assert "**default head version 1** on the network version 3" in operator
    assert "from server 1234's version 1" in operator and "rollback shared network" in operator
    member = "\n".join(default_lines(head, "the network version 3", False, "!"))
    assert "**default head version 1**" in member and "1234" not in member


# -- the operator's holdout ---------------------------------------------------------------------


def test_the_operators_holdout_judges_the_shared_training(tmp_path: Path) -> None:
    holdout = tmp_path / "trusted"
    settings = SimpleNamespace(
        data_dir=tmp_path, command_prefix="!", retrain_min_images=20, default_holdout_dir=holdout
    )
    trainer = Retrainer(None, settings, ("jedi", "sith"), print, None)  # type: ignore[arg-type]
    with pytest.raises(UserFacingError, match=r"DEFAULT_HOLDOUT_DIR\) has no jedi/, sith/"):
        trainer.check_holdout()
    for name in ("jedi", "sith"):
        (holdout / name).mkdir(parents=True)
    trainer.check_holdout()
    record = SimpleNamespace(id=4)
    job = Job(record, RetrainOptions(3), WorkFolder(tmp_path / "run"), tmp_path, None, None)  # type: ignore[arg-type]
    command = trainer.command(job)
    assert command[command.index("--holdout") + 1] == str(tmp_path / "run" / "holdout")
    job.holdout = holdout
    command = trainer.command(job)
    assert command[command.index("--holdout") + 1] == str(holdout)


def score(accuracy: float) -> HoldoutScore:
    return HoldoutScore(
        accuracy=accuracy, images=40, correct=int(40 * accuracy), per_class=None, ood_refused=None
    )


def test_the_reply_says_which_holdout_judged_it() -> None:
    result = TrainerResult(
        status=Status.PUBLISHED,
        reason="",
        version=3,
        before=score(0.5),
        after=score(0.9),
    )
    text = final_text(result, "!", "the operator's holdout (DEFAULT_HOLDOUT_DIR)")
    assert "(40 images never trained on, the operator's holdout (DEFAULT_HOLDOUT_DIR))" in text
    assert "(40 images never trained on)." in final_text(result, "!")
