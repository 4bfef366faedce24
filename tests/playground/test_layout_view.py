"""What the page is given of a layout message (playground.views.layout_view): the tree of
containers, sections, texts, images and buttons, accents as #rrggbb, CDN links as paths, and
no http(s)-less URL; a reply to a layout previews its text."""

from __future__ import annotations

from playground.views import message_view

CARD = {
    "type": 17,
    "accent_color": 0xDC2626,
    "components": [
        {
            "type": 9,
            "components": [{"type": 10, "content": "**Sith** - score 0.973"}],
            "accessory": {"type": 11, "media": {"url": "http://127.0.0.1:1/attachments/1/2/a.png"}},
        },
        {"type": 12, "items": [{"media": {"url": "javascript:alert(1)"}}]},
        {"type": 14, "divider": True},
        {"type": 1, "components": [{"type": 2, "style": 1, "label": "Why?", "custom_id": "w"}]},
    ],
}


def message(**fields: object) -> dict:
    base = {"id": "5", "content": "", "flags": 1 << 15, "components": [CARD], "attachments": []}
    return {**base, **fields}


def test_a_layout_message_is_given_as_a_tree() -> None:
    view = message_view(message())
    assert view["components"] == []
    [card] = view["layout"]
    assert card["type"] == "container" and card["accent"] == "#dc2626"
    section, gallery, separator, row = card["children"]
    assert section["children"] == [{"type": "text", "content": "**Sith** - score 0.973"}]
    assert section["accessory"] == [{"type": "thumbnail", "url": "/attachments/1/2/a.png"}]
    assert gallery == {"type": "gallery", "urls": []}  # not an http(s) link: left out
    assert separator == {"type": "separator", "divider": True}
    assert [b["label"] for b in row["buttons"]] == ["Why?"]


def test_a_plain_message_has_no_layout_and_a_reply_previews_a_layout_text() -> None:
    assert message_view(message(flags=0, components=[]))["layout"] is None
    reply = message(
        id="6",
        flags=0,
        components=[],
        content="Thanks",
        message_reference={"message_id": "5"},
        referenced_message=message(),
    )
    assert message_view(reply)["reply_to"]["content"] == "**Sith** - score 0.973"
