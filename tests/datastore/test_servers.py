"""Servers keep their data apart: labels, counts, conflicts, moderators, forgetting, settings
and the default model's shared set, on SQLite and on PostgreSQL (the `store` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset import DatasetError, DatasetStore, GuildSettings, UserSummary

A, B, C = 2**60 + 1, 2**60 + 2, 2**60 + 3  # three servers


def _files(store: DatasetStore) -> list[Path]:
    return sorted(p for p in (store.data_dir / "images").rglob("*") if p.is_file())


def _teach(store: DatasetStore, data: bytes, guild: int, user: int, label: str, **more):
    record, outcome = store.add_image_and_vote(
        data, guild_id=guild, user_id=user, label=label, source="teach", **more
    )
    return record, outcome


def test_two_servers_labelling_an_image_oppositely_each_see_their_own(
    store: DatasetStore, make_image
) -> None:
    data = make_image(1)
    record, in_a = _teach(store, data, A, 1, "jedi")
    again, in_b = _teach(store, data, B, 2, "sith")
    assert record.new and not again.new and _files(store) == [record.path]
    assert (in_a.label, in_a.votes) == ("jedi", {"jedi": 1, "sith": 0})
    assert (in_b.label, in_b.votes) == ("sith", {"jedi": 0, "sith": 1})  # A's vote unseen
    assert store.label_of(record.sha256, A).label == "jedi"
    assert store.label_of(record.sha256, B).label == "sith"
    assert [(i.sha256, i.label) for i in store.labelled(A, holdout=None)] == [
        (record.sha256, "jedi")
    ]
    assert [i.label for i in store.labelled(B, holdout=None)] == ["sith"]
    # A conflict in B is B's alone.
    store.vote(record.sha256, guild_id=B, user_id=3, label="jedi", source="button")
    summary_a, summary_b = store.summary(A), store.summary(B)
    assert summary_a.conflicts == [] and summary_a.labelled == 1 and summary_a.votes == 1
    assert summary_a.contributors == [(1, 1)]
    assert summary_b.conflicts == [(record.sha256, {"jedi": 1, "sith": 1})]
    assert summary_b.labelled == 0 and summary_b.contributors == [(2, 1), (3, 1)]
    assert store.summary(C).images == 0 and store.summary(C).votes == 0


def test_a_moderator_of_one_server_does_not_outweigh_votes_in_another(
    store: DatasetStore, make_image
) -> None:
    record, _ = _teach(store, make_image(2), A, 9, "sith", moderator=True)
    for user in (1, 2, 3):
        store.vote(record.sha256, guild_id=B, user_id=user, label="jedi", source="button")
    # Her vote in B, as a member there (she moderates A only), is one vote among four.
    outcome = store.vote(record.sha256, guild_id=B, user_id=9, label="sith", source="button")
    assert (outcome.label, outcome.votes) == ("jedi", {"jedi": 3, "sith": 1})
    assert store.label_of(record.sha256, B).moderator_votes == {"jedi": 0, "sith": 0}
    assert store.label_of(record.sha256, A).label == "sith"  # where she moderates, she decides


def test_forgetting_in_one_server_leaves_the_others(store: DatasetStore, make_image) -> None:
    both, _ = _teach(store, make_image(3), A, 1, "jedi")
    _teach(store, make_image(3), B, 2, "sith")
    only_a, _ = _teach(store, make_image(4), A, 1, "sith")
    mine_in_b, _ = _teach(store, make_image(5), B, 1, "jedi")

    forgotten = store.forget_user(1, A)
    assert (forgotten.votes, forgotten.images) == (2, 1)  # only_a had nobody else
    assert not only_a.path.exists() and both.path.exists() and mine_in_b.path.exists()
    assert store.summary(A).images == 0 and store.summary(A).votes == 0
    assert store.label_of(both.sha256, B).label == "sith"
    assert store.label_of(mine_in_b.sha256, B).label == "jedi"  # their vote in B stays
    assert store.user_summary(1) == UserSummary(votes={B: 1}, images={B: 1})

    # From a DM: everywhere.
    assert store.forget_user(1) == type(forgotten)(votes=1, images=1)
    assert not mine_in_b.path.exists() and _files(store) == [both.path]
    assert store.user_summary(1) == UserSummary(votes={}, images={})


def test_the_file_goes_with_the_last_reference(store: DatasetStore, make_image) -> None:
    record, _ = _teach(store, make_image(6), A, 1, "jedi")
    store.vote(record.sha256, guild_id=A, user_id=2, label="jedi", source="button")
    _teach(store, make_image(6), B, 3, "sith")
    assert store.forget_user(1, A).images == 0  # member 2 still labels it in A
    assert store.forget_user(2, A).images == 0  # and server B still holds it
    assert record.path.exists() and store.summary(A).images == 0
    assert store.forget_user(3, B) == type(store.forget_user(3))(votes=1, images=1)
    assert not record.path.exists() and _files(store) == []
    with pytest.raises(DatasetError, match="not in the dataset"):
        store.label_of(record.sha256, B)


def test_a_refused_vote_leaves_no_image(store: DatasetStore, make_image) -> None:
    with pytest.raises(DatasetError, match="jedi or sith"):
        _teach(store, make_image(7), A, 1, "yoda")
    with pytest.raises(DatasetError, match="source"):
        store.add_image_and_vote(make_image(7), guild_id=A, user_id=1, label="jedi", source="x")
    assert _files(store) == [] and store.summary(A).images == 0


def test_the_default_models_set_is_the_sharing_servers(store: DatasetStore, make_image) -> None:
    agreed, _ = _teach(store, make_image(8), A, 1, "jedi")
    _teach(store, make_image(8), B, 2, "jedi")
    disputed, _ = _teach(store, make_image(9), A, 1, "jedi")
    _teach(store, make_image(9), B, 2, "sith")
    private, _ = _teach(store, make_image(10), C, 3, "sith")
    imported = store.add_image(make_image(11))
    store.vote(imported.sha256, guild_id=None, user_id=0, label="sith", source="import")

    def shared(**include) -> dict[str, str]:
        return {i.sha256: i.label for i in store.labelled_shared(holdout=None, **include)}

    assert shared() == {imported.sha256: "sith"}  # nobody shares yet: the imports only
    store.update_guild_settings(A, by=1, sharing=True)
    assert shared() == {imported.sha256: "sith", agreed.sha256: "jedi", disputed.sha256: "jedi"}
    store.update_guild_settings(B, by=2, sharing=True)
    assert shared() == {imported.sha256: "sith", agreed.sha256: "jedi"}  # A and B disagree
    assert shared(include=[C])[private.sha256] == "sith"
    out = store.data_dir.parent / "shared"
    assert store.export_shared(out, holdout=None) == {"jedi": 1, "sith": 1}


def test_server_settings_are_checked_and_default_to_none(store: DatasetStore) -> None:
    assert store.guild_settings(A) == GuildSettings(guild_id=A)
    changed = store.update_guild_settings(
        A, by=7, sharing=True, ood_policy="warn", uncertain_band=0.1, channels=[5, 6, 5]
    )
    assert (changed.sharing, changed.ood_policy, changed.uncertain_band) == (True, "warn", 0.1)
    assert changed.channels == (5, 6) and changed.changed_by == 7
    assert store.guild_settings(A) == changed and not changed.collecting
    store.set_collecting(A, True, by=8)
    assert store.guild_settings(A).collecting and store.guild_settings(A).sharing
    back = store.update_guild_settings(A, by=7, ood_policy=None, channels=None)
    assert (back.ood_policy, back.channels, back.uncertain_band) == (None, None, 0.1)
    for bad, message in (
        ({"ood_policy": "maybe"}, "ood_policy is refuse, warn, off"),
        ({"uncertain_band": 0.7}, "uncertain_band is a number from 0 to 0.5"),
        ({"uncertain_band": "wide"}, "uncertain_band is a number"),
        ({"channels": "general"}, "channels is a list of channel ids"),
        ({"channels": [-1]}, "channels is a list of channel ids"),
        ({"sharing": "yes"}, "sharing is on or off"),
        ({"colour": "red"}, "no such server setting: colour"),
    ):
        with pytest.raises(DatasetError, match=message):
            store.update_guild_settings(A, by=7, **bad)
    assert store.guild_settings(A).uncertain_band == 0.1  # nothing changed


def test_trainings_run_one_per_scope(store: DatasetStore) -> None:
    start = {"channel_id": 1, "user_id": 1, "pid": 1, "params": {}}
    default = store.trainings.start(scope=0, guild_id=A, **start)
    head = store.trainings.start(scope=A, kind="head", guild_id=A, **start)
    assert (head.scope, head.kind, default.scope, default.kind) == (A, "head", 0, "full")
    with pytest.raises(DatasetError, match="already running"):
        store.trainings.start(scope=A, guild_id=A, **start)
    with pytest.raises(DatasetError, match="head or full"):
        store.trainings.start(scope=B, kind="half", guild_id=B, **start)
    assert store.trainings.running(A) == head and store.trainings.running(B) is None
    assert [t.id for t in store.trainings.latest(scope=A)] == [head.id]
    assert {t.id for t in store.trainings.latest()} == {head.id, default.id}
