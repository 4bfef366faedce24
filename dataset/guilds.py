"""A server's settings as the store keeps them: checked here, stored in `guild_settings`.

A value of None means "the environment's default" (the bot's settings); `collecting` and
`sharing` are off until a manager turns them on.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from dataset.records import OOD_POLICIES, DatasetError, GuildSettings
from dataset.schema import GuildSetting

SETTINGS = (
    "collecting",
    "sharing",
    "ood_policy",
    "uncertain_band",
    "channels",
    "ask_every",
    "ask_per_hour",
    "holdout_min_voters",
)
MAX_CHANNELS = 100
MAX_ASK = 1000  # the most `ask_every` and `ask_per_hour` may be
MAX_VOTERS = 20  # the most members `holdout_min_voters` may ask for


def settings_of(guild_id: int, row: GuildSetting | None) -> GuildSettings:
    """The frozen record of a row (or the defaults when the server has none)."""
    if row is None:
        return GuildSettings(guild_id=guild_id)
    return GuildSettings(
        guild_id=guild_id,
        collecting=bool(row.collecting),
        sharing=bool(row.sharing),
        ood_policy=row.ood_policy,
        uncertain_band=row.uncertain_band,
        ask_every=row.ask_every,
        ask_per_hour=row.ask_per_hour,
        holdout_min_voters=row.holdout_min_voters,
        channels=tuple(int(c) for c in row.channels) if row.channels is not None else None,
        changed_by=row.changed_by,
        changed_at=row.changed_at,
    )


def checked(changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` with each value checked and normalised; a bad one is a `DatasetError`."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise DatasetError(f"no such server setting: {', '.join(unknown)}")
    result: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("collecting", "sharing"):
            if not isinstance(value, bool):
                raise DatasetError(f"{name} is on or off, not {value!r}")
        elif name == "ood_policy":
            if value is not None and value not in OOD_POLICIES:
                raise DatasetError(f"ood_policy is {', '.join(OOD_POLICIES)}, not {value!r}")
        elif name == "uncertain_band":
            value = _band(value)
        elif name in ("ask_every", "ask_per_hour"):
            value = _count(name, value)
        elif name == "holdout_min_voters":
            value = _voters(value)
        else:
            value = _channels(value)
        result[name] = value
    return result


def apply(row: GuildSetting, changes: dict[str, Any], *, by: int, at: datetime) -> None:
    for name, value in changes.items():
        setattr(row, name, value)
    row.changed_by, row.changed_at = by, at


def new_row(guild_id: int) -> GuildSetting:
    return GuildSetting(guild_id=guild_id, collecting=False, sharing=False)


def _band(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DatasetError(f"uncertain_band is a number from 0 to 0.5, not {value!r}")
    if not 0 <= value <= 0.5:
        raise DatasetError(f"uncertain_band is a number from 0 to 0.5, not {value}")
    return float(value)


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ASK:
        raise DatasetError(f"{name} is a whole number from 0 to {MAX_ASK}, not {value!r}")
    return value


def _voters(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VOTERS:
        raise DatasetError(
            f"holdout_min_voters is a whole number from 1 to {MAX_VOTERS}, not {value!r}"
        )
    return value


def _channels(value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise DatasetError(f"channels is a list of channel ids, not {value!r}")
    ids = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**63:
            raise DatasetError(f"channels is a list of channel ids, not {item!r}")
        if item not in ids:
            ids.append(item)
    if len(ids) > MAX_CHANNELS:
        raise DatasetError(f"at most {MAX_CHANNELS} channels, not {len(ids)}")
    return ids
