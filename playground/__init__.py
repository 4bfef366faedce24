"""A local Discord look-alike and a web playground for trying the bot without Discord."""
