"""Images stored once by hash, votes, labels, consent, forgetting and the summary, on SQLite and
on PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import hashlib
import stat
import threading
from pathlib import Path

import pytest

from dataset import DatasetError, DatasetStore, is_holdout


def _files(store: DatasetStore) -> list[Path]:
    return sorted(p for p in (store.data_dir / "images").rglob("*") if p.is_file())


def test_the_same_bytes_are_stored_once(store: DatasetStore, make_image) -> None:
    data = make_image(1)
    first = store.add_image(data, guild_id=7, channel_id=8, message_id=9, filename="a.png")
    again = store.add_image(data, guild_id=70, filename="copy.png")
    sha256 = hashlib.sha256(data).hexdigest()
    assert (first.sha256, first.new, again.sha256, again.new) == (sha256, True, sha256, False)
    assert first.path == again.path == store.data_dir / "images" / sha256[:2] / f"{sha256}.png"
    assert first.size == len(data) and first.holdout == is_holdout(sha256)
    assert _files(store) == [first.path] and first.path.read_bytes() == data
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o644
    assert store.summary(7).images == store.summary(70).images == 1
    assert store.summary(None).images == 0  # held by servers 7 and 70 only


def test_the_extension_comes_from_the_detected_format(store: DatasetStore, make_image) -> None:
    record = store.add_image(make_image(2, "JPEG", (30, 20)), filename="lies.png")
    assert record.path.suffix == ".jpg"
    with store.engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT format, width, height, filename FROM images").one()
    assert tuple(row) == ("JPEG", 30, 20, "lies.png")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"just some text, not a picture", "not an image"),
        ("truncated", "incomplete|damaged"),
    ],
)
def test_what_is_not_an_image_is_refused(store: DatasetStore, make_image, data, reason) -> None:
    if data == "truncated":
        data = make_image(3, "PNG", (64, 64))[:200]
    with pytest.raises(DatasetError, match=reason):
        store.add_image(data)
    assert _files(store) == [] and store.summary(None).images == 0


def test_a_second_vote_changes_the_first(store: DatasetStore, make_image) -> None:
    sha256 = store.add_image(make_image(4)).sha256
    vote = {"user_id": 1, "guild_id": 5, "source": "button"}
    first = store.vote(sha256, label="jedi", **vote)
    assert (first.changed, first.previous, first.label, first.votes) == (
        False,
        None,
        "jedi",
        {"jedi": 1, "sith": 0},
    )
    same = store.vote(sha256, label="jedi", **vote)
    assert (same.changed, same.previous, same.label) == (False, "jedi", "jedi")
    changed = store.vote(sha256, label="sith", **vote)
    assert (changed.changed, changed.previous, changed.label) == (True, "jedi", "sith")
    assert changed.votes == {"jedi": 0, "sith": 1} and not changed.conflict
    assert store.summary(5).votes == 1


def test_bad_votes_are_refused(store: DatasetStore, make_image) -> None:
    sha256 = store.add_image(make_image(5)).sha256
    vote = {"user_id": 1, "guild_id": None, "source": "teach"}
    with pytest.raises(DatasetError, match="jedi or sith"):
        store.vote(sha256, label="yoda", **vote)
    with pytest.raises(DatasetError, match="source"):
        store.vote(sha256, label="jedi", user_id=1, guild_id=None, source="telepathy")
    with pytest.raises(DatasetError, match="not in the dataset"):
        store.vote("ab" * 32, label="jedi", **vote)
    with pytest.raises(DatasetError, match="not an image hash"):
        store.vote("../../etc/passwd", label="jedi", **vote)
    assert store.summary(None).votes == 0


def test_moderators_outvote_members_and_ties_are_conflicts(store: DatasetStore, make_image):
    decided, tied = (store.add_image(make_image(seed)).sha256 for seed in (6, 7))
    for user in (1, 2, 3):
        store.vote(decided, user_id=user, guild_id=5, label="jedi", source="button")
    outcome = store.vote(
        decided, user_id=4, guild_id=5, label="sith", source="button", moderator=True
    )
    assert (outcome.label, outcome.votes, outcome.conflict) == (
        "sith",
        {"jedi": 3, "sith": 1},
        False,
    )
    label = store.label_of(decided, 5)
    assert label.label == "sith" and label.moderator_votes == {"jedi": 0, "sith": 1}

    store.vote(tied, user_id=1, guild_id=5, label="jedi", source="button")
    outcome = store.vote(tied, user_id=2, guild_id=5, label="sith", source="button")
    assert outcome.label is None and outcome.conflict
    summary = store.summary(5)
    assert summary.conflicts == [(tied, {"jedi": 1, "sith": 1})]
    assert summary.unlabelled == 1
    assert [image.sha256 for image in store.labelled(5)] == [decided]
    with pytest.raises(DatasetError, match="not in the dataset"):
        store.label_of("cd" * 32, 5)


def test_the_split_depends_on_the_hash_only(tmp_path: Path, database, make_image) -> None:
    images = [make_image(seed) for seed in range(100, 125)]
    splits = []
    for name, order in (("a", images), ("b", images[::-1])):
        with DatasetStore.open(tmp_path / name, database.url(tmp_path / name)) as store:
            for user, data in enumerate(order):
                sha256 = store.add_image(data).sha256
                store.vote(sha256, user_id=user, guild_id=None, label="jedi", source="teach")
            before = {image.sha256: image.holdout for image in store.labelled(None)}
            for data in (make_image(seed) for seed in range(200, 210)):  # the set grows
                store.vote(
                    store.add_image(data).sha256,
                    user_id=1,
                    guild_id=None,
                    label="sith",
                    source="teach",
                )
            after = {image.sha256: image.holdout for image in store.labelled(None)}
            assert {sha: after[sha] for sha in before} == before
            splits.append(before)
    assert splits[0] == splits[1] == {sha: is_holdout(sha) for sha in splits[0]}
    assert 0 < sum(splits[0].values()) < len(images)  # both splits are present
    with DatasetStore.open(tmp_path / "a", database.url(tmp_path / "a")) as store:
        held = store.labelled(None, holdout=True)
        train = store.labelled(None, holdout=False)
        assert all(image.holdout for image in held) and not any(i.holdout for i in train)
        assert len(held) + len(train) == len(store.labelled(None)) == 35


def test_forgetting_deletes_votes_and_the_images_only_they_voted_on(
    store: DatasetStore, make_image
) -> None:
    def given(seed: int, user: int, guild: int, label: str):
        record, _ = store.add_image_and_vote(
            make_image(seed), guild_id=guild, user_id=user, label=label, source="button"
        )
        return record

    only_theirs = given(8, 1, 5, "jedi")
    shared = given(9, 1, 5, "sith")
    store.vote(shared.sha256, user_id=2, guild_id=5, label="sith", source="button")
    others = given(10, 2, 5, "jedi")

    assert store.forget_user(1) == type(store.forget_user(99))(votes=2, images=1)
    assert not only_theirs.path.exists()
    with pytest.raises(DatasetError, match="not in the dataset"):
        store.label_of(only_theirs.sha256, 5)
    assert shared.path.exists()
    assert store.label_of(shared.sha256, 5).votes == {"jedi": 0, "sith": 1}
    assert others.path.exists() and store.label_of(others.sha256, 5).label == "jedi"
    assert _files(store) == sorted([shared.path, others.path])
    summary = store.summary(5)
    assert (summary.images, summary.votes, summary.contributors) == (2, 2, [(2, 2)])
    forgotten = store.forget_user(1)
    assert (forgotten.votes, forgotten.images) == (0, 0)


def test_the_summary(store: DatasetStore, split_images) -> None:
    train, holdout = split_images(False, 4), split_images(True, 2)
    shas = [store.add_image(data, guild_id=5).sha256 for data in train + holdout]
    labels = ["jedi", "jedi", "sith", "jedi", "sith", "jedi"]  # train x4, holdout x2
    for sha256, label in zip(shas[:3] + shas[4:], labels[:3] + labels[4:], strict=True):
        store.vote(sha256, user_id=1, guild_id=5, label=label, source="button")
    store.vote(shas[3], user_id=1, guild_id=5, label="jedi", source="button")  # a conflict:
    store.vote(shas[3], user_id=2, guild_id=5, label="sith", source="button")
    for user in (3, 4, 5, 6, 7):
        store.vote(shas[0], user_id=user, guild_id=5, label="jedi", source="button")
    store.vote(shas[1], user_id=3, guild_id=5, label="jedi", source="button")
    unvoted = store.add_image(split_images(False, 1, start=20_000)[0], guild_id=5).sha256

    summary = store.summary(5)
    assert summary.counts == {
        "jedi": {"train": 2, "holdout": 1},
        "sith": {"train": 1, "holdout": 1},
    }
    assert summary.labelled == 5 and summary.since_last_training == 5  # nothing published yet
    assert summary.conflicts == [(shas[3], {"jedi": 1, "sith": 1})]
    assert summary.unlabelled == 2 and unvoted not in dict(summary.conflicts)
    assert (summary.images, summary.votes, summary.guild_images) == (7, 13, 7)
    assert summary.contributors == [(1, 6), (3, 2), (2, 1), (4, 1), (5, 1)]  # top 5, ties by id

    # Another server's vote on one of these images is that server's alone.
    store.vote(shas[3], user_id=2, guild_id=6, label="sith", source="button")
    in_guild = store.summary(guild_id=6)
    assert in_guild.contributors == [(2, 1)] and in_guild.guild_images == 1
    assert in_guild.counts == {
        "jedi": {"train": 0, "holdout": 0},
        "sith": {"train": 1, "holdout": 0},
    }
    assert in_guild.conflicts == [] and in_guild.votes == 1
    assert store.summary(5) == summary

    training = store.trainings.start(scope=0, guild_id=5, channel_id=1, user_id=1, pid=1, params={})
    store.trainings.finish(training.id, "published", version=2)
    refused = store.trainings.start(scope=0, guild_id=5, channel_id=1, user_id=1, pid=1, params={})
    store.trainings.finish(refused.id, "refused")  # not published: does not count
    store.vote(unvoted, user_id=1, guild_id=5, label="sith", source="teach")
    store.vote(shas[0], user_id=8, guild_id=5, label="jedi", source="button")  # not a new one
    assert store.summary(5).since_last_training == 1
    # A training of another server's model does not count here.
    other = store.trainings.start(scope=6, guild_id=6, channel_id=1, user_id=1, pid=1, params={})
    store.trainings.finish(other.id, "published", version=1)
    assert store.summary(5).since_last_training == 1 and store.summary(6).since_last_training == 0


def test_consent_is_off_until_turned_on(store: DatasetStore) -> None:
    assert not store.collecting(5) and not store.collecting(None)
    store.set_collecting(5, True, by=1)
    assert store.collecting(5) and not store.collecting(6) and not store.collecting(None)
    store.set_collecting(5, False, by=2)
    assert not store.collecting(5)
    with store.engine.connect() as connection:
        row = connection.exec_driver_sql("SELECT collecting, changed_by FROM guild_settings").one()
    assert tuple(row) == (0, 2)


def test_threads_share_one_store(store: DatasetStore, make_image) -> None:
    data = make_image(11)
    start = threading.Barrier(8)
    added, outcomes, errors = [], [], []

    def work(user: int) -> None:
        try:
            start.wait()
            record = store.add_image(data)
            added.append(record.new)
            outcomes.append(
                store.vote(record.sha256, user_id=user, guild_id=5, label="sith", source="button")
            )
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(user,)) for user in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(added) == [False] * 7 + [True]
    assert store.summary(5).votes == 8 and len(_files(store)) == 1
    # Each vote's outcome counts the votes committed before it and its own: at least 1, at most
    # 8 (under READ COMMITTED the last two may commit together, each seeing 7); the image's
    # label, read after them all, counts every one.
    assert all(1 <= outcome.votes["sith"] <= 8 for outcome in outcomes)
    sha = next(image.sha256 for image in store.labelled(5, holdout=None))
    assert store.label_of(sha, 5).votes == {"jedi": 0, "sith": 8}


def test_neither_is_kept_as_its_own_label_and_never_as_a_class(
    store: DatasetStore, make_image, tmp_path: Path
) -> None:
    shas = [store.add_image(make_image(seed)).sha256 for seed in (40, 41, 42)]
    for sha256, label in zip(shas, ("jedi", "sith", "neither"), strict=True):
        store.vote(sha256, user_id=1, guild_id=5, label=label, source="button")
    outcome = store.vote(shas[2], user_id=2, guild_id=5, label="neither", source="teach")
    assert outcome.label == "neither" and outcome.votes["neither"] == 2
    assert store.label_of(shas[2], 5).label == "neither"
    assert store.label_of(shas[2], 6).label is None  # this server's label only
    summary = store.summary(5)
    assert sum(summary.counts["neither"].values()) == 1
    assert sum(summary.counts["jedi"].values()) == sum(summary.counts["sith"].values()) == 1
    assert summary.unlabelled == 0
    assert store.export(tmp_path / "out", 5, holdout=None) == {"jedi": 1, "sith": 1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["jedi", "sith"]
