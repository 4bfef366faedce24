"""A small, in-process look-alike of Discord's API v10, for the tests and the local playground.

The real discord.py client logs in to `DiscordServer` and talks to it as to Discord; what it
implements and leaves out is in docs/playground.md.

* ``server``: `DiscordServer`: builds the guilds, starts and stops, wires the routes.
* ``driver``, ``invocations``, ``people``: what tests and the page do as people, and wait for.
* ``state``: guilds, channels, members, roles, messages, files, commands, interactions.
* ``payloads``, ``components``: Discord's JSON objects, and its rules for message components.
* ``events``, ``gateway``, ``shards``: the fan-out of changes, the gateway, and sharding.
* ``guilds``, ``channels``, ``commands``, ``interactions``, ``cdn``: the routes, by resource.
* ``faults``: failures a test stages on purpose (``server.faults``).
* ``rest``, ``errors``, ``protocol``: request plumbing, Discord's error answers, its numbers.
"""

from playground.discord.errors import DiscordError
from playground.discord.events import Subscription
from playground.discord.faults import CdnFault, Faults, RateLimit, RestFault
from playground.discord.people import ADMINS, MODERATORS
from playground.discord.protocol import FLAG_EPHEMERAL, FLAG_LOADING, OPT_ATTACHMENT
from playground.discord.server import DEFAULT_GUILDS, DiscordServer, numbered_guilds
from playground.discord.shards import Sharding
from playground.discord.state import Limits

__all__ = [
    "ADMINS",
    "DEFAULT_GUILDS",
    "FLAG_EPHEMERAL",
    "FLAG_LOADING",
    "MODERATORS",
    "OPT_ATTACHMENT",
    "CdnFault",
    "DiscordError",
    "DiscordServer",
    "Faults",
    "Limits",
    "RateLimit",
    "RestFault",
    "Sharding",
    "Subscription",
    "numbered_guilds",
]
