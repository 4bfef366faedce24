"""A small, in-process look-alike of Discord's API v10 for tests and the local playground.

``DiscordServer`` is an aiohttp application that speaks just enough of Discord's REST API and
gateway for the real, unmodified discord.py client to log in, receive messages and
interactions, and answer them. Point discord.py at it with ``bot._endpoints.use_endpoints``
(``server.api_url``, ``server.gateway_url``). Several guilds ("Jedi Temple", "Sith Academy",
"Mos Eisley Cantina", see ``server.DEFAULT_GUILDS``), each with text channels, members and the
roles "Moderators" (Manage Messages) and "Admins" (Manage Server + Manage Messages); one bot
user (whose id is also the application id), the human "padawan" (``server.human``, who owns
the guilds: every permission) and "master" (``server.moderator``, Admins) in all of them. The
first channel of the first guild ("general" in "Jedi Temple") is the default one.

Modules
-------
* ``server``: `DiscordServer`, the facade: builds the guilds, starts and stops, wires routes.
* ``driver``: what tests and the page do as people (post, delete, type) and wait for
  (``wait_for_message``, ``wait_for_reply``), and the event feed (``subscribe``); built on
  ``invocations`` (commands, button clicks, ``wait_for_interaction_response``,
  ``wait_for_ack``) and ``people`` (author dicts, ``add_member``, roles by name).
* ``state``: guilds, channels, members, roles, messages (by id, O(1)), files, reactions,
  commands, interactions; ``Limits`` bounds what is kept.
* ``payloads``: pure builders of users, members, guilds, messages, embeds, attachments.
* ``components``: Discord's rules for message components (action rows, buttons, selects).
* ``events``: the fan-out of every change to the gateway, the feed and the waiters.
* ``gateway``: sessions, connections, dispatch filtered by intents and shards, RESUME.
* ``shards``: `Sharding` (guilds per shard, ``max_concurrency``), which shard holds a guild,
  the session start limit, and the IDENTIFYs refused (4010, 4011, INVALID_SESSION).
* ``guilds``, ``channels``, ``commands``, ``interactions``: the REST routes, by resource.
* ``cdn``: attachment files (one filename rule for every upload) and the route serving them.
* ``faults``: failures a test stages on purpose (`Faults`, ``server.faults``).
* ``rest``, ``errors``, ``protocol``: request plumbing, Discord's error answers, its numbers.

What it implements
------------------
* Auth: every REST call must carry ``Authorization: Bot <token>`` (401 with Discord's error
  JSON otherwise, which discord.py turns into ``LoginFailure``); ``GET /gateway``, interaction
  callbacks and webhook-token routes need no token, as on Discord.
* Gateway (``/gateway``): HELLO, IDENTIFY (token check: close 4004; privileged intents when
  the server is created with ``privileged_intents=False``: close 4014), READY listing every
  guild + one GUILD_CREATE each, HEARTBEAT/ACK, RESUME (missed events replayed, then RESUMED;
  unknown session: INVALID_SESSION), REQUEST_GUILD_MEMBERS (a GUILD_MEMBERS_CHUNK per guild),
  sequence numbers, ``compress=zlib-stream``. Sharding (``sharding=Sharding(...)``): ``GET
  /gateway/bot`` recommends ``ceil(guilds / guilds_per_shard)`` shards and reports the
  ``session_start_limit`` (``remaining`` counts the sessions started); an IDENTIFY with
  ``shard: [i, n]`` gets READY and GUILD_CREATEs for its guilds only (``(guild_id >> 22) % n ==
  i``) and only their events (events of no guild: shard 0); a shard id not below its count, or a
  count under 1, is closed with 4010; a connection whose shard (or, unsharded, the whole bot)
  would hold more than ``max_guilds_per_shard`` guilds with 4011; with ``pace_identify`` an
  IDENTIFY within 5 s of the last one of its bucket (``shard_id % max_concurrency``) gets
  INVALID_SESSION. Many connections at once (one per shard, from several processes), each its
  own session, resumable one by one; a new IDENTIFY of a shard forgets that shard's
  disconnected sessions. Guild ids have consecutive timestamps in the order the guilds are
  given (``numbered_guilds(n)`` makes many), so every shard count spreads them evenly. Events
  are filtered by intents like Discord does (no MESSAGE_CREATE without GUILD_MESSAGES; without
  MESSAGE_CONTENT the content, embeds, attachments and components of other users' messages are
  blanked unless the bot is mentioned). The bot's own messages are dispatched back to it.
* REST: users, application info, gateway, channel + guild reads, members, roles, messages
  (create with JSON or multipart ``payload_json`` + ``files[n]``, replies, embeds with
  ``attachment://`` images, components checked as Discord does (400 50035 naming each broken
  rule; an edit leaving them out keeps them, ``[]`` removes them), ``enforce_nonce`` (a nonce
  repeated within 5 minutes gets the message already made, so a retried POST does not post
  twice), edit, delete, get, history with limit/before/after/around),
  typing, reactions (add/remove own, remove others'), application commands (global and guild;
  bulk overwrite keeps ids of unchanged names), interaction callbacks (types 4 and 5; 6 and 7
  for clicks; ``with_response``), webhook followups and ``@original`` get/edit/delete, upload
  size limit (413, code 40005).
* CDN: ``GET /attachments/{channel_id}/{attachment_id}/{filename}`` serves uploaded bytes.
* Driver: ``post_message``, ``delete_message``, ``simulate_typing``, ``invoke_slash_command``,
  ``invoke_message_command`` (each in the default channel unless told another),
  ``click_button`` (a MESSAGE_COMPONENT interaction on a message's button), ``add_member``,
  ``role_names``, ``drop_connections``/``drop_gateway``; shards (``drop_shard``,
  ``shard_sessions``, ``wait_for_shards``, ``delivered_to``: the sessions a message or an
  interaction was sent to; ``guild_ids``, ``first_channel``, ``shard_of``,
  ``guilds_of_shard``, ``recommended_shards``, ``gateway.starts``: every IDENTIFY); recordings
  (``messages``,
  ``messages_in``, ``get_message``, ``interaction_responses``, ``typing_events``,
  ``application_commands``); waiting (``wait_for_message``, ``wait_for_reply``,
  ``wait_for_interaction_response``, ``wait_for_ack``); an event feed for UIs
  (``subscribe``). Authors and users are dicts (``{"username": "visitor"}``; with
  ``"roles": ["Moderators"]`` to set theirs).
* Faults (``server.faults``, a `Faults`; none until a test stages one). Routes are
  ``"METHOD /path"`` below ``/api/v10`` (``*``: one segment; a trailing ``/**``: everything
  below; method ``*`` or none: any); the first active fault matching a call answers it.

  - ``fail(route, status, times=1, retry_after=1.0, is_global=False, code=, message=,
    errors=, body=, applied=False)``: the next ``times`` calls (None: all until cleared) get
    ``status`` without running the route; 429 is Discord's (``retry_after``, ``global``,
    ``Via``, which discord.py needs to retry), others ``{"message", "code"[, "errors"]}``
    (400 Invalid Form Body 50035, 403 Missing Access 50001, else ``"<status>: <reason>"``).
    ``applied``: the route runs, then its answer is replaced (a lost answer).
  - ``rate_limit(route, limit=, per=, is_global=False)``: ``limit`` calls per ``per``
    seconds, the rest 429 with the time left in the window; until cleared.
  - ``cdn(times=None, filename=glob, delay=0, hold=False, status=None, cut_after=None,
    declared_length=None)``: attachment downloads wait ``delay`` s, wait for ``release()``
    (``hold``), answer ``status``, say ``Content-Length: declared_length`` (fewer bytes: the
    file is truncated; more: the connection closes after the file), or stop after
    ``cut_after`` bytes and close the connection.
  - Each returns its fault: ``hits``, ``calls`` (method, path, refused body), ``active``,
    ``await wait_hits(n)``, ``clear()``; CDN ones also ``held``, ``await wait_held(n)``,
    ``release()``. ``faults.clear()`` ends them all (``close()`` does too).
  - ``drop_gateway(code=4000, abrupt=False)`` (on the driver): close the bot's gateway
    sockets with ``code``, or with ``abrupt`` cut the TCP connection without a close frame;
    sessions stay resumable and what is dispatched meanwhile is replayed on RESUME.
* Bounds (``Limits``): the newest 1000 messages per channel, 1000 files (256 MB), 1000
  interactions, records and queued feed events per subscriber are kept; older ones are
  forgotten.

What it does not implement
--------------------------
DMs, threads, voice, presences (PRESENCE_UPDATE is accepted and ignored), rate limits unless a
test stages them (``faults``; no ratelimit headers are sent), select menus being used (they are
checked and stored; only buttons can be clicked), "V2" layout components, modals (a type 9
answer is only recorded), autocomplete, resolving user, channel, role or mentionable options
of invoked commands (their values are sent as given), user context-menu commands being
invoked, permission checks of the bot's own calls beyond "only the author may edit" (stage a
403 with ``faults``), channel permission overwrites, audit logs, webhooks other than
interaction ones, stickers, polls, avatars/icons (the CDN only serves attachments), guilds or
channels added after start, member join and update events (a member's roles reach the bot
with their next message or interaction), gateway payload compression (``"compress": true``
in IDENTIFY) and zstd transport compression (clients asking for it get text frames, which
discord.py accepts), and the daily session start limit (counted, never enforced). Unknown
routes answer
404 with Discord's error JSON and log a warning, so gaps are visible.
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
