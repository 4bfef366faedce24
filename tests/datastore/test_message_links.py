"""`DatasetStore.message_links`: the server's latest images kept from a message, for `!dataset`'s
links to them; never another server's, never an image that came in no message."""

from __future__ import annotations

import hashlib

from dataset import DatasetStore

A, B = 2**60 + 1, 2**60 + 2
CHANNEL, MEMBER = 40, 9


def _teach(store: DatasetStore, data: bytes, guild: int, message_id: int | None) -> str:
    store.add_image_and_vote(
        data,
        guild_id=guild,
        user_id=MEMBER,
        label="jedi",
        source="teach",
        channel_id=CHANNEL if message_id else None,
        message_id=message_id,
    )
    return hashlib.sha256(data).hexdigest()


def test_links_are_the_servers_own_newest_first_and_limited(
    store: DatasetStore, make_image
) -> None:
    first = _teach(store, make_image(1), A, 100)
    _teach(store, make_image(2), A, None)  # a slash command's image: no message to link
    second = _teach(store, make_image(3), A, 101)
    _teach(store, make_image(4), B, 200)
    assert store.message_links(A, 10) == [(second, CHANNEL, 101), (first, CHANNEL, 100)]
    assert store.message_links(A, 1) == [(second, CHANNEL, 101)]
    assert [message for _, _, message in store.message_links(B, 10)] == [200]
