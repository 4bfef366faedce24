"""playground/web/markdown.js in headless Chromium, alone on a blank page: Discord's markdown
drawn as elements, user text never parsed as HTML, links http(s) only.

Skipped like test_browser.py when Playwright or Chromium is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_browser import REPO, _require_browser, browser  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

MARKDOWN_JS = REPO / "playground" / "web" / "markdown.js"
RENDER = """([text, options]) => {
    const out = document.getElementById("out");
    out.replaceChildren(window.renderMarkdown(text, options || {}));
    return out.innerHTML;
}"""


@pytest.fixture(scope="module")
def tab(browser: Any) -> Iterator[Any]:  # noqa: F811 (the fixture imported above)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (errors.append(dialog.message), dialog.dismiss()))
    page.set_content("<div id=out></div>")
    page.add_script_tag(path=str(MARKDOWN_JS))
    yield page
    page.close()
    assert not errors, errors


def render(tab: Any, text: str, **options: Any) -> str:
    return tab.evaluate(RENDER, [text, options])


def test_inline_formatting(tab: Any) -> None:
    html = render(tab, "**b** *i* _j_ __u__ ~~s~~ `x < y` snake_case_name ***both***")
    assert "<strong>b</strong>" in html and "<em>i</em>" in html and "<em>j</em>" in html
    assert "<u>u</u>" in html and "<s>s</s>" in html
    assert '<code class="inline-code">x &lt; y</code>' in html
    assert "snake_case_name" in html  # underscores inside a word are not italics
    assert "<strong><em>both</em></strong>" in html
    assert render(tab, r"\*not italics\*") == '<div class="line">*not italics*</div>'


def test_code_blocks_keep_their_text_and_language(tab: Any) -> None:
    html = render(tab, "Commands:\n```\n!jedisith [image]\n**not bold**\n```\nafter")
    assert html == (
        '<div class="line">Commands:</div>'
        '<pre class="code-block"><code>!jedisith [image]\n**not bold**</code></pre>'
        '<div class="line">after</div>'
    )
    assert 'data-language="py"' in render(tab, "```py\nprint(1)\n```")
    # A message posted from the page's form has CRLF line breaks: the same lines.
    crlf = render(tab, "one\r\n```\r\ncode\r\n```")
    assert crlf == '<div class="line">one</div><pre class="code-block"><code>code</code></pre>'


def test_block_lines_subtext_headings_quotes_and_lists(tab: Any) -> None:
    html = render(tab, "# Title\n## Two\n-# small **print**\n> quoted\n> on\n- one\n- two\nplain")
    assert '<div class="heading h1">Title</div><div class="heading h2">Two</div>' in html
    assert '<div class="subtext">small <strong>print</strong></div>' in html
    assert (
        '<blockquote class="quote"><div class="line">quoted</div><div class="line">on</div>'
        "</blockquote>"
    ) in html
    assert '<ul class="md-list"><li>one</li><li>two</li></ul><div class="line">plain</div>' in html


def test_timestamps_are_local_time_text(tab: Any) -> None:
    unix = 1_700_000_000
    expected = tab.evaluate(
        "(u) => new Date(u * 1000).toLocaleString(undefined, {hour: '2-digit', minute: '2-digit'})",
        unix,
    )
    text = tab.evaluate(
        "(t) => { const o = document.getElementById('out');"
        " o.replaceChildren(window.renderMarkdown(t)); return o.textContent; }",
        f"at <t:{unix}:t>, <t:{unix}:R>, <t:{unix}:F>",
    )
    assert "<t:" not in text and text.startswith(f"at {expected}, ")
    assert " ago, " in text  # :R, relative
    assert 'datetime="2023-11-14T22:13:20.000Z"' in render(tab, f"<t:{unix}>")


def test_links_are_http_only_and_open_apart(tab: Any) -> None:
    html = render(tab, "[docs](https://example.com/a) and https://x.org/p?q=1. or <https://y.org>")
    assert html.count('rel="noopener noreferrer"') == 3 and html.count('target="_blank"') == 3
    assert '<a class="md-link" href="https://example.com/a"' in html and ">docs</a>" in html
    assert 'href="https://x.org/p?q=1"' in html and "</a>. or" in html  # the full stop stays out
    unsafe = render(tab, "[click](javascript:alert(1)) javascript:alert(1) [x](data:text/html,1)")
    assert "<a" not in unsafe


def test_user_text_is_never_html(tab: Any) -> None:
    html = render(tab, "<img src=x onerror=alert(1)> **<b>bold?</b>** [<i>t</i>](https://e.org)")
    assert "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<strong>&lt;b&gt;bold?&lt;/b&gt;</strong>" in html


def test_mentions_name_people_the_page_knows(tab: Any) -> None:
    tab.evaluate("() => window.markdown.setLookup({user: (id) => (id === '42' ? 'Master' : null)})")
    html = render(tab, "<@42> and <@!42> and <@7>")
    assert html.count('<span class="mention">@Master</span>') == 2
    assert '<span class="mention">@unknown-user</span>' in html


def test_a_reply_preview_is_one_formatted_line(tab: Any) -> None:
    html = render(tab, "**Jedi** - score 0.91\n-# probability\n```\ncode\nblock\n```", preview=True)
    assert html.startswith("<strong>Jedi</strong> - score 0.91 probability")
    assert '<code class="inline-code">code block</code>' in html
    assert "<div" not in html and "<pre" not in html
