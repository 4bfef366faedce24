"""The default model, the operator's: which server's head it is (`!default from`), what
`!model shared` says of it, and `!rollback shared network|head N`.

Every server without a model of its own (and every DM) is served the default head when there is
one (versions in `DATA_DIR/models/default/`, `bot.server_models`), else the shared network's own
verdict. A server's head becomes the default only with that server's consent: its managers'
`!dataset share on`, the same switch that lends its labels to the operator's full training.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.errors import UserFacingError
from bot.server_models import (
    NETWORK,
    current_head_version,
    default_folder,
    publish_default,
    serve_network,
    serve_version,
    server_folder,
    version_kind,
)
from dataset import DatasetStore
from model.bundle import ModelError, read_info, versions

NO_CONSENT = (
    "Server {guild} does not share: its model becomes the default only with its consent, its "
    "managers' `{prefix}dataset share on` (which also lends its labels to the default model)."
)


@dataclass(frozen=True)
class DefaultHead:
    """The default head served now, as `!model shared` shows it."""

    version: int
    source_guild: int | None
    source_version: int | None
    created: str | None
    applied: bool  # learned on the network served now


def parse_from(words: list[str], prefix: str) -> tuple[int, int | None]:
    """`from SERVER_ID [VERSION]`: the server and the version (None: its current one)."""
    usage = f"Try `{prefix}default from SERVER_ID` or `{prefix}default from SERVER_ID VERSION`."
    if not 2 <= len(words) <= 3 or words[0].lower() != "from":
        raise UserFacingError(usage)
    if not all(word.isdigit() for word in words[1:]):
        raise UserFacingError(usage)
    return int(words[1]), int(words[2]) if len(words) == 3 else None


def make_default(
    store: DatasetStore | None,
    data_dir: Path,
    guild_id: int,
    number: int | None,
    backbone: str | None,
    prefix: str,
) -> tuple[int, int]:
    """Publish version `number` (None: the current one) of server `guild_id`'s head as the
    default head, if that server consents (`sharing`) and it was learned on the served network
    (`backbone`); the default's new version and the server's version. Blocking: run in a thread.
    """
    if store is None:
        raise UserFacingError("Learning is not set up on this bot (it has no dataset).")
    if not store.guild_settings(guild_id).sharing:
        raise UserFacingError(NO_CONSENT.format(guild=guild_id, prefix=prefix))
    folder = server_folder(data_dir, guild_id)
    if number is None:
        number = current_head_version(folder)
        if number is None:
            raise UserFacingError(
                f"Server {guild_id} is served the default model, not a model of its own: "
                "name one of its versions."
            )
    if number not in versions(folder):
        kept = ", ".join(str(n) for n in versions(folder)) or "none"
        raise UserFacingError(f"Server {guild_id} has no version {number} (kept: {kept}).")
    try:
        if version_kind(folder / str(number)) == NETWORK:
            raise UserFacingError(
                f"Server {guild_id}'s version {number} is a network of its own: only a head on "
                "the shared network can be the default model; name one of its head versions."
            )
        made = publish_default(data_dir, guild_id, number, backbone or "")
    except ModelError as error:  # a `HeadError` too: learned on another network
        raise UserFacingError(f"I can't make it the default: {error}.") from None
    return made, number


def current_default(data_dir: Path, backbone: str | None) -> DefaultHead | None:
    """The default head served now; None: the network's own verdict. Blocking."""
    folder = default_folder(data_dir)
    number = current_head_version(folder)
    if number is None:
        return None
    try:
        raw = read_info(folder / str(number)).raw
    except ModelError:
        return None
    figures = dict(raw.get("head") or {})
    learned_on = raw.get("backbone")
    return DefaultHead(
        number,
        figures.get("source_guild"),
        figures.get("source_version"),
        figures.get("created"),
        applied=learned_on is None or learned_on == backbone,
    )


def default_lines(head: DefaultHead | None, network: str, operator: bool, prefix: str) -> list[str]:
    """`!model shared`'s lines about what servers without a model of their own are served; the
    server a default head came from only for an `operator`."""
    if head is None:
        return [
            f"Served by default: **{network}**, its own verdict (no default head; "
            f"`{prefix}default from SERVER_ID` makes a server's model the default)."
            if operator
            else f"Served by default: **{network}**, its own verdict."
        ]
    made = ""
    if head.created:
        made = f", made <t:{int(datetime.fromisoformat(head.created).timestamp())}:R>"
    line = f"Served by default: **default head version {head.version}** on {network}{made}"
    if operator and head.source_guild is not None:
        line += f", from server {head.source_guild}'s version {head.source_version}"
    lines = [line + "."]
    if not head.applied:
        lines.append(
            "-# It was learned on another network than the one served now, so it is not "
            "applied: servers without their own model get the network's own verdict."
        )
    if operator:
        lines.append(
            f"-# `{prefix}rollback shared network` serves the network's own verdict; "
            f"`{prefix}rollback shared head N` an earlier default head."
        )
    return lines


def rollback_default(data_dir: Path, wanted: int | None) -> str:
    """`!rollback shared network` (None) or `!rollback shared head N`; what is served now.
    Blocking."""
    folder = default_folder(data_dir)
    current = current_head_version(folder)
    try:
        if wanted is None:
            if current is None:
                raise ModelError("the network's own verdict is served by default already")
            serve_network(folder)
            return "The network's own verdict is served by default again"
        if wanted == current:
            raise ModelError(f"default head version {wanted} is already the current one")
        serve_version(folder, wanted)
    except ModelError as error:
        raise UserFacingError(f"I can't roll back: {error}.") from None
    return f"Default head version {wanted} is served by default again"


def was_served(data_dir: Path) -> str:
    """What servers without a model of their own were served before a change, in words."""
    current = current_head_version(default_folder(data_dir))
    return "the network's own verdict" if current is None else f"default head version {current}"
