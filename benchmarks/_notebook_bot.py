"""The e2e and memory baseline: a bot that answers `!jedisith` the notebook's way.

What a direct port of the notebook into discord.py looks like: the Keras model loaded from
`model.keras` at start; for each command, download the first attachment, then
`notebook_score` (PIL, `tf.image.resize`, `model.predict`) right in the event-loop callback,
then reply. No worker thread, no batching. For benchmarking only:

    DISCORD_TOKEN=... DISCORD_API_URL=... DISCORD_GATEWAY_URL=... MODEL_PATH=... \
        python -m benchmarks._notebook_bot
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import discord
import numpy as np

from benchmarks._notebook import load_keras_model, notebook_score
from bot.endpoints import use_endpoints

CLASS_NAMES = ("jedi", "sith")


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    use_endpoints(os.environ.get("DISCORD_API_URL"), os.environ.get("DISCORD_GATEWAY_URL"))
    model = load_keras_model(Path(os.environ["MODEL_PATH"]))
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents, allowed_mentions=discord.AllowedMentions.none())

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot or not message.content.startswith("!jedisith"):
            return
        if not message.attachments:
            await message.reply("Attach an image.", mention_author=False)
            return
        data = await message.attachments[0].read()
        score = notebook_score(model, data)  # blocking, as in the notebook's cell
        label = CLASS_NAMES[int(np.around(score))]
        await message.reply(f"**{label.capitalize()}** - score {score:.3f}", mention_author=False)

    client.run(os.environ["DISCORD_TOKEN"], log_handler=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
