"""Who vouches for a held-out image: the members whose vote gives its label and whether a
moderator's does, kept in `server_images`; a server's own `holdout_min_voters`, kept and
checked; migration 0008_holdout_voters, which fills them from the votes and goes back to
0007_asking keeping the rest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select

from dataset import DatasetError, DatasetStore
from dataset.database import alembic_config, current_revision, make_engine
from dataset.schema import ServerImage

A, B = 2**60 + 1, 2**60 + 2
MANAGER = 7
EVE, ALICE, MOD = 11, 12, 13
SplitImages = Callable[[bool, int], list[bytes]]


def kept(store: DatasetStore, guild: int) -> dict[str, tuple[int, bool]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ServerImage.image_sha256, ServerImage.label_voters, ServerImage.moderated).where(
                ServerImage.guild_id == guild
            )
        ).all()
    return {sha: (voters, moderated) for sha, voters, moderated in rows}


def test_one_members_holdout_waits_for_a_second_vote_or_a_moderator(
    store: DatasetStore, split_images: SplitImages
) -> None:
    alone, seconded, moderated, disputed = split_images(True, 4)
    for data in (alone, seconded, moderated, disputed):
        store.add_image_and_vote(data, guild_id=A, user_id=EVE, label="sith", source="teach")
    store.add_image_and_vote(seconded, guild_id=A, user_id=ALICE, label="sith", source="button")
    store.add_image_and_vote(
        moderated, guild_id=A, user_id=MOD, label="jedi", source="button", moderator=True
    )
    store.add_image_and_vote(disputed, guild_id=A, user_id=ALICE, label="jedi", source="button")
    store.add_image_and_vote(alone, guild_id=B, user_id=ALICE, label="sith", source="button")
    named = {"alone": alone, "seconded": seconded, "moderated": moderated, "disputed": disputed}
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in named.items()}
    assert kept(store, A) == {
        sha["alone"]: (1, False),
        sha["seconded"]: (2, False),
        sha["moderated"]: (1, True),  # the moderator's label, Jedi: one voter, a moderator
        sha["disputed"]: (0, False),  # a tie: no label
    }
    assert kept(store, B) == {sha["alone"]: (1, False)}  # another server's votes stay apart
    summary = store.summary(A)
    assert summary.vouched_holdout(2) == (2, 1)  # seconded and moderated judge; alone waits
    assert summary.vouched_holdout(1) == (3, 0)
    assert summary.vouched_holdout(3) == (1, 2)  # a moderator's vote is always enough
    voters = {image.sha256: (image.voters, image.moderated) for image in store.labelled(A)}
    assert voters == {sha[n]: kept(store, A)[sha[n]] for n in ("alone", "seconded", "moderated")}
    store.forget_user(ALICE, A)
    assert kept(store, A)[sha["seconded"]] == (1, False)


def test_a_servers_count_of_voters_is_kept_and_checked(store: DatasetStore) -> None:
    assert store.guild_settings(A).holdout_min_voters is None  # the environment's
    assert store.update_guild_settings(A, by=MANAGER, holdout_min_voters=3).holdout_min_voters == 3
    assert store.guild_settings(A).holdout_min_voters == 3
    assert store.guild_settings(B).holdout_min_voters is None
    for bad in (0, 21, 2.5, True, "3"):
        with pytest.raises(DatasetError, match="holdout_min_voters is a whole number from 1 to 20"):
            store.update_guild_settings(A, by=MANAGER, holdout_min_voters=bad)
    assert (
        store.update_guild_settings(A, by=MANAGER, holdout_min_voters=None).holdout_min_voters
        is None
    )


def test_0008_fills_the_voters_from_the_votes_and_goes_back_to_0007(
    data_dir: Path, database_url: str, split_images: SplitImages
) -> None:
    one, two = split_images(True, 2)
    with DatasetStore.open(data_dir, database_url) as store:
        store.update_guild_settings(A, by=MANAGER, collecting=True, holdout_min_voters=4)
        for user in (EVE, ALICE):
            store.add_image_and_vote(two, guild_id=A, user_id=user, label="jedi", source="teach")
        store.add_image_and_vote(
            one, guild_id=A, user_id=MOD, label="sith", source="teach", moderator=True
        )
        before = kept(store, A)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0007_asking")
        with engine.connect() as connection:
            assert current_revision(connection) == "0007_asking"
            columns = {c["name"] for c in inspect(connection).get_columns("server_images")}
            assert "label_voters" not in columns and "moderated" not in columns
            settings = {c["name"] for c in inspect(connection).get_columns("guild_settings")}
            assert "holdout_min_voters" not in settings
    finally:
        engine.dispose()
    with DatasetStore.open(data_dir, database_url) as store:  # 0007_asking -> 0008
        assert (
            kept(store, A)
            == before
            == {
                hashlib.sha256(two).hexdigest(): (2, False),
                hashlib.sha256(one).hexdigest(): (1, True),
            }
        )
        settings = store.guild_settings(A)
        assert settings.collecting and settings.holdout_min_voters is None
