"""The playground page in headless Chromium, with the real bot (python -m playground): the
newest message stays in view, and the "new messages" bar.

Skipped like test_browser.py when Playwright or Chromium is missing.
"""

from __future__ import annotations

from typing import Any

import pytest
import test_browser
from test_browser import SAMPLES, images_loaded, reply_to, send, shot

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
