"""The README's quick start and learning-loop recipe, typed on the playground's page in headless
Chromium as a person would, row by row from README.md's walk tables (so the two cannot drift).

The playground serves the shipped model (model/default), as `make run` does. After each reply the
test checks that the reply says what the README's row quotes, and that it is visible in the
message list. Each step's screenshot goes to test-artifacts/readme-walk/; with
JEDISITH_DOCS_SCREENSHOT=1 the `!features` step also becomes docs/playground.png, the README's
picture. Skipped like test_browser.py when Playwright or Chromium is missing.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, REPO, SAMPLES, Playground, _missing

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

README = REPO / "README.md"
SHOTS = ARTIFACTS / "readme-walk"
PICTURE = "docs/playground.png"
PICTURE_STEP = "!features"  # the quick start's step whose screenshot is the README's picture
DOCS_SCREENSHOT = os.environ.get("JEDISITH_DOCS_SCREENSHOT") == "1"
QUOTED = re.compile(r"\"([^\"]+)\"")


@dataclass(frozen=True)
class Step:
    """One row of a walk table: who posts, what they type, what they attach, what is quoted."""

    person: str
    text: str
    attach: str
    answer: str

    def quoted(self) -> list[str]:
        return QUOTED.findall(self.answer)


def walk_section(name: str) -> list[str]:
    """The README's lines after `<!-- walk: name ...-->`: its table or its fenced block."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"<!-- walk: {name}"))
    block: list[str] = []
    for line in lines[start + 1 :]:
        if not line.strip() and block and not block[-1].startswith("```"):
            break
        if line.strip():
            block.append(line)
        if len(block) > 1 and line.startswith("```"):
            break
    return block


def walk_steps(name: str) -> list[Step]:
    """The rows of the walk table `name`: `| posting as | type | attach | the bot answers |`."""
    rows = [line for line in walk_section(name) if line.startswith("|")]
    assert [c.strip() for c in rows[0].strip("|").split("|")] == [
        "posting as",
        "type",
        "attach",
        "the bot answers",
    ]
    steps = []
    for row in rows[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip()[1:-1])]
        person, typed, attach, answer = cells
        assert typed.startswith("`") and typed.endswith("`"), row
        steps.append(Step(person, typed.strip("`"), attach, answer))
    return steps


def walk_commands(name: str) -> list[list[str]]:
    """The shell commands of the fenced block after `<!-- walk: name -->`."""
    lines = walk_section(name)
    assert lines[0].startswith("```") and lines[-1] == "```", lines
    return [shlex.split(line) for line in lines[1:-1]]


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("JEDISITH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; JEDISITH_REQUIRE_BROWSER=1 requires the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the README's terminal commands run in (a fresh clone's root, for them)."""
    return tmp_path_factory.mktemp("readme-walk")


@pytest.fixture(scope="module")
def walk_playground(workdir: Path) -> Iterator[Playground]:
    running = Playground(REPO / "model" / "default", workdir, "readme-walk-playground.log")
    try:
        yield running
    finally:
        running.stop()
        running._log.close()


@pytest.fixture(scope="module")
def page(walk_playground: Playground) -> Iterator[Any]:
    """One tab for the whole walk; fails on JS errors, CSP refusals or dialogs."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        tab.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        tab.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        tab.set_default_timeout(60_000)
        tab.goto(walk_playground.url)
        tab.wait_for_selector("body[data-ready=true]")
        tab.wait_for_selector("#connection[data-state=online]")
        yield tab
        browser.close()
    assert not problems, problems


# ---------------------------------------------------------------------------------- walking


def user_count(page: Any) -> int:
    return page.locator(".message[data-author=user]").count()


def post(page: Any, step: Step, workdir: Path) -> str:
    """Post one row as the README says: as that person, the text, then the sample or the files."""
    page.select_option("#posting-as", label=step.person)
    before = user_count(page)
    page.fill("#text", step.text)
    if step.attach.startswith("sample "):
        page.locator(f".sample[data-name='{step.attach.removeprefix('sample ')}']").click()
    else:
        if step.attach:
            files = sorted(glob.glob(str(workdir / step.attach)))
            assert len(files) == 10, f"{step.attach}: {len(files)} files"  # "the ten files"
            page.set_input_files("#file-input", files)
            page.wait_for_function(
                "(n) => document.querySelectorAll('.pending-file').length === n", arg=len(files)
            )
        page.press("#text", "Enter")
    page.wait_for_function(
        "(n) => document.querySelectorAll('.message[data-author=user]').length > n", arg=before
    )
    return page.locator(".message[data-author=user]").last.get_attribute("data-id")


def wait_for_answer(page: Any, command_id: str, step: Step) -> Any:
    """The bot's reply to `command_id`, once it says every fragment the row quotes and its
    images have loaded."""
    selector = f".message[data-author=bot][data-reply-to='{command_id}']"
    page.wait_for_function(
        """([s, quoted]) => {
            const node = document.querySelector(s);
            if (!node || node.hasAttribute("data-loading")) return false;
            const text = node.innerText.replace(/\\s+/g, " ");
            const imgs = [...node.querySelectorAll("img")];
            return quoted.every((q) => text.includes(q))
                && imgs.every((i) => i.complete && i.naturalWidth > 0);
        }""",
        arg=[selector, step.quoted()],
    )
    return page.locator(selector).first


def in_view(page: Any, message_id: str) -> dict[str, float]:
    """The message's and the message list's visible rectangles, and whether the message shows:
    wholly, or, when taller than the list, down to its last line."""
    return page.evaluate(
        """(id) => {
            const r = document.getElementById(`message-${id}`).getBoundingClientRect();
            const s = document.getElementById("scroller").getBoundingClientRect();
            const top = Math.max(s.top, 0), bottom = Math.min(s.bottom, window.innerHeight);
            const overflow = Math.max(0, r.height - (bottom - top));
            const shown = r.bottom <= bottom + 1 && r.top >= top - overflow - 1;
            return { top: r.top, bottom: r.bottom, listTop: top, listBottom: bottom, shown };
        }""",
        message_id,
    )


def visible(page: Any, message_id: str) -> bool:
    """Whether the reply comes into view (within 5 s: late images re-pin the list) without the
    person scrolling."""
    try:
        page.wait_for_function(
            """(id) => {
                const r = document.getElementById(`message-${id}`).getBoundingClientRect();
                const s = document.getElementById("scroller").getBoundingClientRect();
                const top = Math.max(s.top, 0), bottom = Math.min(s.bottom, window.innerHeight);
                const overflow = Math.max(0, r.height - (bottom - top));
                return r.bottom <= bottom + 1 && r.top >= top - overflow - 1;
            }""",
            arg=message_id,
            timeout=5_000,
        )
    except Exception:  # playwright's TimeoutError
        return False
    return True


def walk(page: Any, steps: list[Step], workdir: Path, prefix: str) -> list[str]:
    """Each step in turn: post, wait for the answer, check it is in view, screenshot."""
    replies: list[str] = []
    out_of_view: list[str] = []
    for number, step in enumerate(steps, 1):
        command = post(page, step, workdir)
        answer = wait_for_answer(page, command, step)
        page.mouse.move(0, 0)
        replies.append(answer.get_attribute("data-id"))
        if not visible(page, replies[-1]):
            where = in_view(page, replies[-1])
            out_of_view.append(f"the reply to {step.text!r} (step {number}): {where}")
        name = re.sub(r"[^a-z0-9]+", "-", f"{step.text} {step.attach}".lower()).strip("-")
        shot = SHOTS / f"{prefix}-{number:02d}-{name}.png"
        page.screenshot(path=str(shot))  # what the person sees, in view or not
        if DOCS_SCREENSHOT and step.text == PICTURE_STEP and not out_of_view:
            (REPO / PICTURE).write_bytes(shot.read_bytes())
    assert not out_of_view, out_of_view
    return replies


# ---------------------------------------------------------------------------------- tests


def test_the_readme_shows_a_walk_screenshot() -> None:
    """The README's picture is the walk's `!features` step (JEDISITH_DOCS_SCREENSHOT=1 makes it)."""
    head = README.read_text().splitlines()[:15]
    assert any(f"]({PICTURE})" in line for line in head)
    assert PICTURE_STEP in [step.text for step in walk_steps("quick start")]
    assert (REPO / PICTURE).is_file()


def test_quick_start(page: Any, workdir: Path) -> None:
    steps = walk_steps("quick start")
    assert any(step.attach.startswith("sample ") for step in steps)
    for step in steps:
        if step.attach.startswith("sample "):
            assert (SAMPLES / step.attach.removeprefix("sample ")).is_file(), step
    walk(page, steps, workdir, "quick-start")


def test_learning_loop(page: Any, workdir: Path) -> None:
    for command in walk_commands("drawings"):
        assert command[0] == ".venv/bin/python", command  # the project's own interpreter
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run([sys.executable, *command[1:]], cwd=workdir, env=env, check=True)
    replies = walk(page, walk_steps("learning loop"), workdir, "learning-loop")
    assert not in_view(page, replies[0])["shown"]  # the check can fail: the first is long gone
