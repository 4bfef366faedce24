"""A layout ("Components V2") message in headless Chromium: a small discord.py bot answers
"!card" on an image with a card (a container with a red accent, a section with the image's
thumbnail beside a markdown text, a media gallery and a button inside); the page draws the
accent bar, the text with the same markdown as messages, the images and the button, whose
click reaches the bot. Skipped like test_browser.py when Playwright or Chromium is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discordkit import tiny_png
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _missing
from test_browser_buttons import Harness

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]

SITH_RED = "rgb(220, 38, 38)"


class Card(discord.ui.LayoutView):
    def __init__(self, url: str) -> None:
        super().__init__(timeout=None)
        text = discord.ui.TextDisplay("**Sith** - score 0.973 (very sure, 97%)")
        section = discord.ui.Section(text, accessory=discord.ui.Thumbnail(url))
        gallery = discord.ui.MediaGallery(discord.MediaGalleryItem(url))
        button = discord.ui.Button(label="Why?", custom_id="card:why")
        button.callback = self.why  # type: ignore[method-assign]
        row = discord.ui.ActionRow(button)
        self.add_item(discord.ui.Container(section, gallery, row, accent_colour=0xDC2626))

    async def why(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Because of the red saber", ephemeral=True)


class CardHarness(Harness):
    async def _start(self) -> None:
        @self.bot.command()
        async def card(ctx: Any) -> None:
            await ctx.reply(view=Card(ctx.message.attachments[0].url))

        await super()._start()


@pytest.fixture
def harness() -> Iterator[Harness]:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    running = CardHarness()
    try:
        yield running
    finally:
        running.stop()


def test_a_card_is_drawn_with_its_accent_text_images_and_button(
    harness: Harness, tmp_path: Any
) -> None:
    from playwright.sync_api import sync_playwright

    image = tmp_path / "saber.png"
    image.write_bytes(tiny_png(40, 30))
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
        page.set_input_files("#file-input", str(image))
        page.fill("#text", "!card")
        page.press("#text", "Enter")
        card = page.locator(".message[data-author=bot] .layout-container")
        card.wait_for()
        accent = card.evaluate("node => getComputedStyle(node).borderLeftColor")
        assert accent == SITH_RED
        assert card.locator(".layout-text strong").inner_text() == "Sith"  # markdown
        assert "score 0.973" in card.locator(".layout-text").inner_text()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.layout-container img')]"
            ".every(img => img.complete && img.naturalWidth === 40)"
        )
        assert card.locator(".layout-thumbnail img").count() == 1
        assert card.locator(".layout-gallery img").count() == 1
        assert page.locator(".message[data-author=bot] .attachments").count() == 0  # in the card
        card.locator(".button", has_text="Why?").click()
        answer = page.locator(".message.ephemeral", has_text="Because of the red saber")
        answer.wait_for()
        preview = answer.locator(".ref-content")
        assert preview.inner_text().startswith("Sith - score 0.973")  # markdown, as Discord
        assert preview.locator("strong").inner_text() == "Sith"
        page.mouse.move(0, 0)
        page.screenshot(path=str(ARTIFACTS / "playground-card.png"))
        browser.close()
    assert problems == []
