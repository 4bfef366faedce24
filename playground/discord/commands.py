"""REST routes of application commands, global and per guild: list, bulk overwrite (which
keeps the ids of unchanged names), create, get, edit, delete; with Discord's name and
description rules."""

from __future__ import annotations

import copy
import logging
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from playground.discord.errors import DiscordError, form_error, unknown
from playground.discord.protocol import API_PREFIX, COMMAND_CHAT_INPUT, snowflake
from playground.discord.rest import Route, json_response, no_content, path_id, read_body

if TYPE_CHECKING:
    from playground.discord.server import DiscordServer

log = logging.getLogger(__name__)

_COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


def _check_name_and_description(data: dict[str, Any], where: str) -> None:
    name = str(data.get("name", ""))
    if not _COMMAND_NAME.match(name) or name != name.lower():
        raise form_error(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", name)
    if not 1 <= len(str(data.get("description") or "")) <= 100:
        raise form_error(f"{where}.description", "BASE_TYPE_BAD_LENGTH", "Must be 1-100 characters")


def _validate_options(options: list[dict[str, Any]], path: str) -> None:
    for i, option in enumerate(options):
        where = f"{path}.{i}"
        _check_name_and_description(option, where)
        _validate_options(option.get("options") or [], f"{where}.options")


def normalise(
    data: dict[str, Any], application_id: int, guild_id: int | None, path: str
) -> dict[str, Any]:
    """A command as Discord stores it (id still None), or 400 when it breaks the rules."""
    kind = int(data.get("type") or COMMAND_CHAT_INPUT)
    name = str(data.get("name", ""))
    if kind == COMMAND_CHAT_INPUT:
        _check_name_and_description(data, path)
        _validate_options(data.get("options") or [], f"{path}.options")
    elif not 1 <= len(name) <= 32:
        raise form_error(f"{path}.name", "BASE_TYPE_BAD_LENGTH", "Must be 1-32 characters")
    command = {
        "id": None,
        "application_id": str(application_id),
        "version": str(snowflake()),
        "type": kind,
        "name": name,
        "name_localizations": data.get("name_localizations"),
        "description": (data.get("description") or "") if kind == COMMAND_CHAT_INPUT else "",
        "description_localizations": data.get("description_localizations"),
        "default_member_permissions": data.get("default_member_permissions"),
        "dm_permission": data.get("dm_permission", True),
        "contexts": data.get("contexts"),
        "integration_types": data.get("integration_types") or [0],
        "nsfw": bool(data.get("nsfw", False)),
    }
    if kind == COMMAND_CHAT_INPUT:
        command["options"] = copy.deepcopy(data.get("options") or [])
    if guild_id is not None:
        command["guild_id"] = str(guild_id)
    return command


class CommandRoutes:
    def __init__(self, server: DiscordServer) -> None:
        self.server = server

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        for scope in ("", "/guilds/{guild_id:\\d+}"):
            base = f"{API_PREFIX}/applications/{{app_id:\\d+}}{scope}/commands"
            one = f"{base}/{{command_id:\\d+}}"
            routes += [
                ("GET", base, self.list_commands),
                ("PUT", base, self.overwrite_commands),
                ("POST", base, self.create_command),
                ("GET", one, self.get_command),
                ("PATCH", one, self.edit_command),
                ("DELETE", one, self.delete_command),
            ]
        return routes

    def _scope(self, request: web.Request) -> int | None:
        """The guild a request's commands belong to; None: global."""
        if path_id(request, "app_id") != self.server.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" in request.match_info:
            return self.server.state.guild(path_id(request, "guild_id")).id
        return None

    def _normalise(self, data: dict[str, Any], guild_id: int | None, path: str) -> dict:
        return normalise(data, self.server.application_id, guild_id, path)

    def _save(self, command: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        state = self.server.state
        for old in state.scoped_commands(guild_id):
            if old["name"] == command["name"] and old["type"] == command["type"]:
                command["id"] = old["id"]
                break
        else:
            command["id"] = str(snowflake())
        state.commands[int(command["id"])] = command
        return command

    def _command(self, request: web.Request) -> dict[str, Any]:
        guild_id = self._scope(request)
        command = self.server.state.commands.get(path_id(request, "command_id"))
        if command is None or command.get("guild_id") != (guild_id and str(guild_id)):
            raise unknown("application command", 10063)
        return command

    async def _body(self, request: web.Request) -> dict[str, Any]:
        body, _ = await read_body(request, self.server.max_upload_bytes)
        return body

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.server.state.scoped_commands(self._scope(request)))

    async def overwrite_commands(self, request: web.Request) -> web.Response:
        guild_id = self._scope(request)
        items = (await self._body(request)).get("_list", [])
        if not isinstance(items, list):
            raise form_error("_list", "BASE_TYPE_ARRAY", "Must be an array")
        normalised = [self._normalise(c, guild_id, str(i)) for i, c in enumerate(items)]
        keys = [(c["name"], c["type"]) for c in normalised]
        if len(set(keys)) != len(keys):
            raise form_error("_list", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Duplicate names")
        saved = [self._save(c, guild_id) for c in normalised]
        keep = {c["id"] for c in saved}
        commands = self.server.state.commands
        for old in self.server.state.scoped_commands(guild_id):
            if old["id"] not in keep:
                del commands[int(old["id"])]
        log.info("%d application commands registered (guild %s)", len(saved), guild_id)
        return json_response(saved)

    async def create_command(self, request: web.Request) -> web.Response:
        guild_id = self._scope(request)
        command = self._normalise(await self._body(request), guild_id, "0")
        return json_response(self._save(command, guild_id), status=201)

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self._command(request))

    async def edit_command(self, request: web.Request) -> web.Response:
        command = self._command(request)
        body = await self._body(request)
        updated = self._normalise({**command, **body}, self._scope(request), "0")
        updated["id"] = command["id"]
        self.server.state.commands[int(command["id"])] = updated
        return json_response(updated)

    async def delete_command(self, request: web.Request) -> web.Response:
        command = self._command(request)
        del self.server.state.commands[int(command["id"])]
        return no_content()
