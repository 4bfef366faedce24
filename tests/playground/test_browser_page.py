"""The playground page in headless Chromium, with the real bot (python -m playground): the
newest message stays in view, the "new messages" bar, Discord's markdown in messages and reply
previews, "posting as" across reloads and at 420 px, uploads that are too large or not images,
the slash-command popup beside the samples, and a terminal that says where to open the page.

Skipped like test_browser.py when Playwright or Chromium is missing.
"""

from __future__ import annotations

from typing import Any

import pytest
import test_browser
from test_browser import READY, SAMPLES, Playground, images_loaded, reply_to, send, shot

from playground.forms import MAX_UPLOAD_BYTES

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

# test_browser's fixtures: a playground, started once for this module, and a tab on it.
_require_browser = test_browser._require_browser
playgrounds = test_browser.playgrounds
playground = test_browser.playground
browser = test_browser.browser
context = test_browser.context
page = test_browser.page

TALL = "\n".join(f"line {n} of a tall message" for n in range(40))
# Whether the bottom of a node is inside the message list's viewport, once the page has laid out
# and its resize observers have run (two animation frames).
IN_VIEW = """async (selector) => {
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    const node = document.querySelector(selector);
    const box = node.getBoundingClientRect();
    const view = document.getElementById("scroller").getBoundingClientRect();
    return box.bottom <= view.bottom + 1 && box.bottom > view.top;
}"""
POST_AS = """async ([content, as]) => {
    const token = document.querySelector('meta[name="playground-token"]').content;
    const form = new FormData();
    form.append("content", content);
    form.append("as", as);
    const answer = await fetch("/playground/api/messages",
        { method: "POST", body: form, headers: { "X-Playground-Token": token } });
    return (await answer.json()).message.id;
}"""


def in_view(page: Any, selector: str) -> bool:
    return page.evaluate(IN_VIEW, selector)


def scroll_up_to(page: Any, selector: str) -> None:
    """Scroll the messages up with the mouse wheel, as a person does, until `selector` shows."""
    box = page.locator("#scroller").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(100):
        if in_view(page, selector):
            return
        before = page.evaluate("() => document.getElementById('scroller').scrollTop")
        page.mouse.wheel(0, -200)
        page.wait_for_function(
            "(top) => document.getElementById('scroller').scrollTop !== top", arg=before
        )
    raise AssertionError(f"{selector} never came into view")


# ---------------------------------------------------------------------------------- scrolling


def test_the_answer_is_shown_after_attaching_with_plus(page: Any) -> None:
    send(page, TALL)  # enough to scroll
    page.set_input_files("#file-input", SAMPLES / "sith-1.jpg")  # what + opens
    page.wait_for_selector(".pending-file img")
    command = send(page, "!jedisith")
    images_loaded(page, f"#message-{command} .attachment-image", 1)
    answer = reply_to(page, command)
    assert "score" in answer.locator(".content").inner_text()
    assert in_view(page, f"#message-{answer.get_attribute('data-id')}")
    shot(page, "playground-pinned-after-attach")


def test_the_answer_is_shown_after_replying_to_an_older_image(page: Any) -> None:
    older = send(page, "", SAMPLES / "jedi-1.jpg")
    images_loaded(page, f"#message-{older} .attachment-image", 1)
    send(page, TALL)
    scroll_up_to(page, f"#message-{older}")
    target = page.locator(f"#message-{older}")
    target.hover()
    target.locator(".action-reply").click()
    command = send(page, "!jedisith")
    assert page.locator(f"#message-{command}").get_attribute("data-reply-to") == older
    answer = reply_to(page, command)
    assert "score" in answer.locator(".content").inner_text()
    assert in_view(page, f"#message-{answer.get_attribute('data-id')}")
    assert page.locator("#new-messages").is_hidden()


def test_new_messages_while_scrolled_up_show_the_bar(page: Any) -> None:
    first = send(page, TALL)
    send(page, TALL)
    scroll_up_to(page, f"#message-{first}")
    assert page.locator("#new-messages").is_hidden()
    posted = page.evaluate(POST_AS, ["Anyone here?", "master"])
    page.wait_for_selector(f"#message-{posted}")
    bar = page.locator("#new-messages")
    bar.wait_for()
    assert "1 new message" in bar.inner_text()
    assert not in_view(page, f"#message-{posted}")  # the person's place is kept
    shot(page, "playground-new-messages-bar")
    bar.click()
    page.wait_for_function(
        "() => { const s = document.getElementById('scroller');"
        " return s.scrollHeight - s.scrollTop - s.clientHeight < 2; }"
    )
    assert in_view(page, f"#message-{posted}") and bar.is_hidden()


# ---------------------------------------------------------------------------------- markdown


def test_markdown_in_messages_and_reply_previews(page: Any) -> None:
    text = "**Jedi** or *Sith*?\n```\n!jedisith [image]\n```\n-# small print <t:1700000000:R>"
    posted = send(page, text)
    content = page.locator(f"#message-{posted} .content")
    assert content.locator("pre.code-block code").inner_text() == "!jedisith [image]"
    assert content.locator(".subtext").inner_text().startswith("small print ")
    stamp = content.locator("time.md-timestamp").inner_text()
    assert stamp.endswith(" ago") and "<t:" not in content.inner_text()
    message = page.locator(f"#message-{posted}")
    message.hover()
    message.locator(".action-reply").click()
    reply = send(page, "a reply")
    preview = page.locator(f"#message-{reply} .ref-content")
    assert preview.locator("strong").inner_text() == "Jedi"
    assert preview.locator("em").inner_text() == "Sith"
    assert "**" not in preview.inner_text()
    shot(page, "playground-markdown")


# ---------------------------------------------------------------------------------- composer


def test_posting_as_survives_a_reload_and_shows_at_420_px(page: Any) -> None:
    page.select_option("#posting-as", "master")
    try:
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert page.input_value("#posting-as") == "master"
        assert page.locator("#me-name").inner_text() == "Master"
        page.set_viewport_size({"width": 420, "height": 800})
        select = page.locator("#posting-as")
        assert select.is_visible()
        box = select.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 420 and box["y"] + box["height"] <= 800
        shot(page, "playground-420px")
    finally:
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.select_option("#posting-as", "padawan")  # the other tests post as the owner


def test_an_oversized_upload_is_named_and_does_not_block_the_next_send(page: Any) -> None:
    huge = {"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (MAX_UPLOAD_BYTES + 1)}
    page.set_input_files("#file-input", [huge])
    error = page.locator("#composer-error")
    assert "huge.png" in error.inner_text() and "not attached" in error.inner_text()
    assert page.locator(".pending-file").count() == 0
    shot(page, "playground-oversized")
    command = send(page, "!jedisith", SAMPLES / "sith-2.jpg")
    assert "score" in reply_to(page, command).locator(".content").inner_text()


def test_a_file_named_png_that_is_not_an_image_shows_as_a_file(page: Any) -> None:
    fake = {"name": "fake.png", "mimeType": "image/png", "buffer": b"not a picture at all"}
    page.set_input_files("#file-input", [fake])
    chip = page.locator(".pending-file")
    chip.locator(".file-icon").wait_for()  # the preview did not decode
    assert chip.locator(".pending-name").inner_text() == "fake.png"
    assert chip.locator(".pending-size").inner_text() == "20 B"
    assert chip.locator("img").count() == 0
    posted = send(page, "")
    card = page.locator(f"#message-{posted} .file-card")
    card.wait_for()
    assert card.locator(".file-name").inner_text() == "fake.png"
    assert card.locator(".file-size").inner_text() == "20 B"
    assert page.locator(f"#message-{posted} .attachment-image").count() == 0
    shot(page, "playground-not-an-image")


def test_the_command_popup_leaves_the_samples_row_visible(page: Any) -> None:
    page.fill("#text", "/")
    popup = page.locator("#command-popup")
    popup.wait_for()
    samples = page.locator("#samples").bounding_box()
    box = popup.bounding_box()
    assert box["y"] + box["height"] <= samples["y"] + 1  # above the row, not over it
    page.locator(".sample").first.wait_for()
    shot(page, "playground-command-popup")
    page.fill("#text", "")


# ---------------------------------------------------------------------------------- terminal


def test_the_terminal_says_where_to_open_the_page_and_nothing_misleading(
    playground: Playground,
) -> None:
    ready = [line for line in playground.stdout if READY.search(line)]
    assert len(ready) == 1, playground.stdout
    log = playground.log()
    assert "alembic" not in log  # its INFO lines at each start
    assert "//discord.com" not in log  # no invite to the real Discord for the look-alike's bot
    assert "behind" not in log  # discord.py's "Can't keep up"
