"""The jedisith Discord bot."""
