"""REST reads of who and where: the gateway URL, the bot user and its application, users,
guilds, their channels, roles and members; and the guild payloads the gateway sends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.discord import payloads
from playground.discord.errors import unknown
from playground.discord.protocol import API_PREFIX, INTENT_GUILD_MEMBERS
from playground.discord.rest import Route, json_response, path_id
from playground.discord.state import Guild

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer


def guild_payload(server: DiscordServer, guild: Guild) -> dict[str, Any]:
    return payloads.guild(
        guild.id,
        guild.name,
        owner_id=guild.owner_id,
        roles=guild.roles,
        system_channel_id=guild.channel_ids[0] if guild.channel_ids else None,
        tier=payloads.premium_tier(server.max_upload_bytes),
    )


def guild_create(server: DiscordServer, guild: Guild, intents: int) -> dict[str, Any]:
    """GUILD_CREATE for a session with ``intents``: without GUILD_MEMBERS, Discord only sends
    the bot itself (and voice members)."""
    state = server.state
    everyone = intents & INTENT_GUILD_MEMBERS
    member_ids = list(guild.members) if everyone else [server.application_id]
    return payloads.guild_create(
        guild_payload(server, guild),
        joined_at=guild.joined_at,
        members=[state.member(guild, uid) for uid in member_ids],
        member_count=len(guild.members),
        channels=state.guild_channels(guild),
    )


class GuildRoutes:
    def __init__(self, server: DiscordServer) -> None:
        self.server = server

    def routes(self) -> list[Route]:
        api = API_PREFIX
        guild = f"{api}/guilds/{{guild_id:\\d+}}"
        return [
            ("GET", f"{api}/gateway", self.get_gateway),
            ("GET", f"{api}/gateway/bot", self.get_gateway_bot),
            ("GET", f"{api}/users/@me", self.get_me),
            ("GET", f"{api}/users/@me/guilds", self.get_my_guilds),
            ("GET", f"{api}/users/{{user_id:\\d+}}", self.get_user),
            ("GET", f"{api}/oauth2/applications/@me", self.get_application),
            ("GET", f"{api}/applications/@me", self.get_application),
            ("GET", guild, self.get_guild),
            ("GET", f"{guild}/channels", self.get_guild_channels),
            ("GET", f"{guild}/roles", self.get_roles),
            ("GET", f"{guild}/members", self.get_members),
            ("GET", f"{guild}/members/{{user_id:\\d+}}", self.get_member),
        ]

    def _guild(self, request: web.Request) -> Guild:
        return self.server.state.guild(path_id(request, "guild_id"))

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.server.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        server = self.server
        return json_response(
            {
                "url": server.gateway_url,
                "shards": server.recommended_shards,
                "session_start_limit": server.gateway.starts.limit(),
            }
        )

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(self.server.bot_user)

    async def get_my_guilds(self, request: web.Request) -> web.Response:
        state = self.server.state
        bot_id = self.server.application_id
        return json_response(
            [
                {
                    "id": str(guild.id),
                    "name": guild.name,
                    "icon": None,
                    "banner": None,
                    "owner": False,
                    "permissions": str(state.permissions(guild, bot_id)),
                    "features": [],
                }
                for guild in state.guilds.values()
            ]
        )

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.server.state.users.get(path_id(request, "user_id"))
        if user is None:
            raise unknown("User", 10013)
        return json_response(user)

    async def get_application(self, request: web.Request) -> web.Response:
        server = self.server
        application = payloads.application(
            server.bot_user,
            server.human,
            privileged_intents=server.privileged_intents,
            guild_count=len(server.state.guilds),
        )
        return json_response(application)

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        body = guild_payload(self.server, guild)
        if request.query.get("with_counts", "").lower() in ("true", "1"):
            body["approximate_member_count"] = len(guild.members)
            body["approximate_presence_count"] = 0
        return json_response(body)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response(self.server.state.guild_channels(self._guild(request)))

    async def get_roles(self, request: web.Request) -> web.Response:
        return json_response(self._guild(request).roles)

    async def get_members(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        after = int(request.query.get("after", 0))
        limit = int(request.query.get("limit", 1))
        ids = sorted(uid for uid in guild.members if uid > after)[:limit]
        return json_response([self.server.state.member(guild, uid) for uid in ids])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        user_id = path_id(request, "user_id")
        if user_id not in guild.members:
            raise unknown("Member", 10007)
        return json_response(self.server.state.member(guild, user_id))
