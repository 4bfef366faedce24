"""The playground's buttons in headless Chromium. A small discord.py bot (in this process, in
a thread of its own, so the test does not depend on which buttons the real bot has) answers
"!vote" with buttons; the page draws them as Discord does, a click reaches the bot as whoever
the page posts as, an ephemeral answer says whom it is for, an UPDATE_MESSAGE re-renders the
message, and a click nobody answers says "This interaction failed".

Skipped like test_browser.py when Playwright or Chromium is missing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import discord
import pytest
from discordkit import TOKEN, new_bot
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _missing

from bot.endpoints import use_endpoints
from playground.web import PlaygroundServer

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]


class Vote(discord.ui.View):
    def __init__(self, *, disabled: bool = False) -> None:
        super().__init__(timeout=None)
        for child in self.children:
            if isinstance(child, discord.ui.Button):
                child.disabled = disabled

    @discord.ui.button(label="Right", custom_id="vote:right", style=discord.ButtonStyle.success)
    async def right(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.send_message(f"Thanks, {interaction.user.name}", ephemeral=True)

    @discord.ui.button(label="It's a Sith", custom_id="vote:sith", style=discord.ButtonStyle.danger)
    async def sith(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        content = f"Sith, says {interaction.user.name}"
        await interaction.response.edit_message(content=content, view=Vote(disabled=True))

    @discord.ui.button(label="Ignore me", custom_id="ignored")
    async def ignored(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        pass  # no answer: Discord (and the page) say the interaction failed


class Harness:
    """A `PlaygroundServer` and a bot on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = PlaygroundServer(token=TOKEN)
        self.server.web.actions.ack_timeout = 0.5  # Discord's 3 s, shortened
        self.bot = new_bot()
        self.task: asyncio.Task[None] | None = None
        self.call(self._start())

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    async def _start(self) -> None:
        await self.server.start()
        use_endpoints(self.server.api_url, self.server.gateway_url)

        @self.bot.command()
        async def vote(ctx: Any) -> None:
            await ctx.reply("Jedi or Sith?", view=Vote())

        self.task = asyncio.create_task(self.bot.start(TOKEN))
        await asyncio.wait_for(self.bot.wait_until_ready(), 20)

    async def _stop(self) -> None:
        await self.bot.close()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        use_endpoints(None, None)
        await self.server.close()

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def harness() -> Iterator[Harness]:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    running = Harness()
    try:
        yield running
    finally:
        running.stop()


def test_buttons_clicked_as_two_people(harness: Harness) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.set_default_timeout(20_000)
        page.goto(harness.server.base_url)
        page.wait_for_selector("#connection[data-state=online]")
        options = page.locator("#posting-as option")
        assert options.all_inner_texts() == ["Padawan", "Master", "Youngling"]
        assert options.nth(1).get_attribute("title") == "Master, moderator"
        tags = page.locator("#people .role-tag").all_inner_texts()
        assert tags == ["owner", "moderator", "member"]

        page.fill("#text", "!vote")
        page.press("#text", "Enter")
        verdict = page.locator(".message[data-author=bot]", has_text="Jedi or Sith?")
        verdict.locator(".button").first.wait_for()
        buttons = verdict.locator(".action-row .button")
        assert buttons.all_inner_texts() == ["Right", "It's a Sith", "Ignore me"]
        classes = [buttons.nth(i).get_attribute("class") for i in range(3)]
        styles = ["success", "danger", "secondary"]
        assert classes == [f"button button-{style}" for style in styles]

        verdict.locator(".button-success").click()  # as padawan
        secret = page.locator(".message.ephemeral", has_text="Thanks, padawan")
        secret.wait_for()
        assert "Only you can see this" in secret.locator(".ephemeral-note").inner_text()
        assert secret.locator(".ref-author").inner_text() == "@JediSith"  # a reply to...
        assert secret.locator(".ref-content").inner_text() == "Jedi or Sith?"  # ...the verdict

        page.select_option("#posting-as", "master")
        assert page.locator("#me-name").inner_text() == "Master"
        assert "Only Padawan can see this" in secret.locator(".ephemeral-note").inner_text()

        verdict.locator(".button", has_text="Ignore me").click()
        verdict.locator(".interaction-failed").wait_for()
        assert verdict.locator(".interaction-failed").inner_text() == "This interaction failed"

        verdict.locator(".button-danger").click()  # as master: UPDATE_MESSAGE
        page.wait_for_function(
            """() => [...document.querySelectorAll('.message[data-author=bot] .content')]
                     .some((n) => n.textContent.includes('Sith, says master'))"""
        )
        updated = page.locator(".message[data-author=bot]", has_text="Sith, says master")
        assert updated.locator(".button:disabled").count() == 3
        page.mouse.move(0, 0)
        page.screenshot(path=str(ARTIFACTS / "playground-buttons.png"))
        browser.close()
    assert not problems, problems
    messages = harness.server.messages
    assert [m["author"]["username"] for m in messages[:1]] == ["padawan"]
    assert messages[1]["content"] == "Sith, says master"  # the verdict, updated in place
