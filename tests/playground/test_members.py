"""Members and their permissions in the look-alike: the Moderators and Admins roles, who has
them, and what discord.py makes of them in messages, slash commands and clicks."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord.ext import commands
from discordkit import Runner, new_bot, rest

from playground.discord import DiscordServer
from playground.discord.protocol import ALL_PERMISSIONS, EVERYONE_PERMISSIONS

pytestmark = pytest.mark.timeout(20)

PEOPLE: dict[str, dict[str, Any] | None] = {
    "padawan": None,  # the owner: the default author
    "master": {"username": "master"},  # seeded with the Admins role
    "mod": {"username": "mod", "roles": ["Moderators"]},
    "visitor": {"username": "visitor"},  # new: no roles
}
EXPECTED = {  # (manage_messages, manage_guild) as discord.py sees them
    "padawan": (True, True),
    "master": (True, True),
    "mod": (True, False),
    "visitor": (False, False),
}


def describe(member: discord.Member | discord.User) -> str:
    assert isinstance(member, discord.Member)
    perms = member.guild_permissions
    return f"{member.name} {perms.manage_messages} {perms.manage_guild}"


def test_every_guild_has_the_roles_and_master() -> None:
    server = DiscordServer()
    for guild in server.state.guilds.values():
        roles = {role["name"]: int(role["permissions"]) for role in guild.roles}
        assert list(roles) == ["@everyone", "JediSith", "Moderators", "Admins"]
        assert discord.Permissions(roles["Moderators"]) == discord.Permissions(manage_messages=True)
        assert discord.Permissions(roles["Admins"]) == discord.Permissions(
            manage_messages=True, manage_guild=True
        )
        assert server.role_names(server.moderator, guild.id) == ["Admins"]
        assert server.state.permissions(guild, int(server.human["id"])) == ALL_PERMISSIONS
    assert not discord.Permissions(EVERYONE_PERMISSIONS).manage_messages


def test_add_member_and_roles_by_name() -> None:
    server = DiscordServer()
    guilds = list(server.state.guilds.values())
    apprentice = server.add_member("apprentice", roles=["Moderators"])
    assert server.role_names(apprentice) == ["Moderators"]
    assert int(apprentice["id"]) not in guilds[1].members  # the default guild only
    server.add_member("apprentice", roles=["Admins", "Moderators"], guild_id=guilds[1].id)
    assert server.role_names(apprentice, guilds[1].id) == ["Moderators", "Admins"]
    assert server.add_member("apprentice") is apprentice  # roles become exactly those given
    assert server.role_names(apprentice) == []
    with pytest.raises(LookupError, match="no role 'Jedi Council'"):
        server.add_member("ghost", roles=["Jedi Council"])
    assert server.state.user_named("ghost") is None  # nothing half made
    with pytest.raises(LookupError):
        server.add_member("ghost", roles=["@everyone"])


async def test_roles_reach_discord_py(server: DiscordServer, run_client: Runner) -> None:
    client = await run_client(new_bot())
    guild = client.get_guild(server.guild_id)
    assert guild is not None
    by_name = {role.name: role for role in guild.roles}
    assert by_name["Admins"].permissions.manage_guild and by_name["Admins"].hoist
    assert not by_name["Moderators"].permissions.manage_guild
    fetched = {role.name for role in await guild.fetch_roles()}
    assert fetched == {"@everyone", "JediSith", "Moderators", "Admins"}
    status, roles = await rest(server, "GET", f"/guilds/{server.guild_id}/roles")
    assert status == 200 and [r["name"] for r in roles][2:] == ["Moderators", "Admins"]


async def test_prefix_commands_see_each_members_permissions(
    server: DiscordServer, run_client: Runner
) -> None:
    bot = new_bot()

    @bot.command()
    async def perms(ctx: commands.Context[Any]) -> None:
        await ctx.reply(describe(ctx.author))

    @bot.command()
    @commands.has_permissions(manage_guild=True)
    async def collect(ctx: commands.Context[Any]) -> None:
        await ctx.reply("collecting")

    @collect.error
    async def refused(ctx: commands.Context[Any], error: commands.CommandError) -> None:
        await ctx.reply(f"refused: {type(error).__name__}")

    await run_client(bot)
    for name, author in PEOPLE.items():
        posted = await server.post_message("!perms", author=author)
        reply = await server.wait_for_reply(posted["id"], timeout=5)
        assert reply["content"] == "{} {} {}".format(name, *EXPECTED[name])
        posted = await server.post_message("!collect", author=author)
        reply = await server.wait_for_reply(posted["id"], timeout=5)
        allowed = EXPECTED[name][1]
        assert reply["content"] == ("collecting" if allowed else "refused: MissingPermissions")

    demoted = {"username": "master", "roles": []}  # an author dict's roles replace theirs
    posted = await server.post_message("!perms", author=demoted)
    assert (await server.wait_for_reply(posted["id"], timeout=5))["content"] == "master False False"


async def test_interactions_carry_each_members_permissions(
    server: DiscordServer, run_client: Runner
) -> None:
    bot = new_bot()
    seen: asyncio.Queue[tuple[str, bool, bool]] = asyncio.Queue()

    class Moderate(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Forget", custom_id="forget")
        async def forget(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
            perms = interaction.permissions  # from the interaction's member.permissions
            await seen.put((interaction.user.name, perms.manage_messages, perms.manage_guild))
            await interaction.response.send_message(describe(interaction.user), ephemeral=True)

    @bot.tree.command(name="whoami", description="Who am I?")
    async def whoami(interaction: discord.Interaction) -> None:
        assert not interaction.app_permissions.manage_guild  # the bot's own role
        await interaction.response.send_message(describe(interaction.user), view=Moderate())

    await run_client(bot)
    await bot.tree.sync()
    for name, user in PEOPLE.items():
        invoked = await server.invoke_slash_command("whoami", user=user)
        answer = await server.wait_for_reply(invoked["id"], timeout=5)
        assert answer["content"] == "{} {} {}".format(name, *EXPECTED[name])
        click = await server.click_button(answer["id"], "forget", user=user)
        assert click["member"]["user"]["username"] == name
        clicked = await server.wait_for_interaction_response(click["id"], timeout=5)
        assert clicked["content"] == answer["content"]
        assert await asyncio.wait_for(seen.get(), 5) == (name, *EXPECTED[name])


async def test_a_guild_given_to_someone_else_is_theirs(
    server: DiscordServer, run_client: Runner
) -> None:
    """Servers owned by different people: eve created her own and holds every permission
    there, padawan none beyond a member's; the other guilds stay padawan's."""
    theirs = server.guild_ids[1]
    eve = server.give_guild("eve", theirs)
    assert server.state.guild(theirs).owner_id == int(eve["id"])
    assert server.state.permissions(server.state.guild(theirs), int(eve["id"])) == ALL_PERMISSIONS
    bot = new_bot()

    @bot.command()
    async def perms(ctx: commands.Context[Any]) -> None:
        await ctx.reply(describe(ctx.author))

    client = await run_client(bot)
    guild = client.get_guild(theirs)
    assert guild is not None and guild.owner_id == int(eve["id"])
    assert client.get_guild(server.guild_id).owner_id == int(server.human["id"])  # type: ignore[union-attr]
    channel = server.first_channel(theirs)
    for author, expected in ((eve, "eve True True"), (None, "padawan False False")):
        who = None if author is None else {"username": author["username"]}
        posted = await server.post_message("!perms", author=who, channel_id=channel)
        assert (await server.wait_for_reply(posted["id"], timeout=5))["content"] == expected
    posted = await server.post_message("!perms")  # padawan in its own guild
    assert (await server.wait_for_reply(posted["id"], timeout=5))["content"] == "padawan True True"
