"""Message components, as Discord's (non-"V2") messages carry them: at most 5 action rows,
each holding at most 5 buttons or exactly one select menu.

`normalise` checks a request's ``components`` the way Discord does (every broken rule is
named in one 400 Invalid Form Body, code 50035, ``errors`` tree) and returns them as the
message will carry them, each numbered with an ``id`` as Discord numbers them. `find_button`
is what a click looks up.

Buttons: ``style`` 1-4 (primary, secondary, success, danger) need a ``custom_id`` (at most
100 characters, unique within the message) and take no ``url``; style 5 (link) needs a
``url`` (http, https or discord) and takes no ``custom_id``; ``label`` at most 80 characters;
``disabled`` a boolean. Premium buttons (style 6) are refused, and so are "V2" layout
components outside a message flagged IS_COMPONENTS_V2 (`playground.discord.layouts`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from playground.discord.errors import FieldError, form_error, form_errors
from playground.discord.protocol import (
    BUTTON_LINK,
    BUTTON_STYLES,
    COMPONENT_ACTION_ROW,
    COMPONENT_BUTTON,
    COMPONENT_SELECTS,
    MAX_ACTION_ROWS,
    MAX_BUTTON_LABEL,
    MAX_BUTTON_URL,
    MAX_CUSTOM_ID,
    MAX_ROW_BUTTONS,
)

_URL_SCHEMES = ("http://", "https://", "discord://")
_NOT_A_DICT = ("MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
_BOTH = (
    "BUTTON_COMPONENT_CUSTOM_ID_URL_MUTUALLY_EXCLUSIVE",
    "A custom id and url cannot both be specified",
)
_MAX_OPTIONS = 25
_MAX_OPTION_TEXT = 100


def _too_long(limit: int) -> tuple[str, str]:
    return "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."


def _not_a_string(value: Any) -> tuple[str, str]:
    return "BASE_TYPE_STRING", f"Could not interpret {value!r} as string."


def normalise(components: Any, path: str = "components") -> list[dict[str, Any]]:
    """The components a message will carry (``None``: none), or `DiscordError` 400 naming
    every field that breaks Discord's rules (``path`` is where the request holds them:
    ``components``, or ``data.components`` in an interaction callback)."""
    if components is None:
        return []
    if not isinstance(components, list):
        raise form_error(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(components) > MAX_ACTION_ROWS:
        raise form_error(path, *_too_long(MAX_ACTION_ROWS))
    problems: list[FieldError] = []
    custom_ids: set[str] = set()
    for index, row in enumerate(components):
        check_row(row, f"{path}.{index}", custom_ids, problems)
    if problems:
        raise form_errors(problems)
    return numbered(copy.deepcopy(components))


def check_row(row: Any, where: str, custom_ids: set[str], problems: list[FieldError]) -> None:
    if not isinstance(row, dict):
        problems.append((where, *_NOT_A_DICT))
        return
    if row.get("type") != COMPONENT_ACTION_ROW:
        problems.append(
            (f"{where}.type", "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
        )
        return
    children = row.get("components")
    if not isinstance(children, list) or not 1 <= len(children) <= MAX_ROW_BUTTONS:
        message = f"Must be between 1 and {MAX_ROW_BUTTONS} in length."
        problems.append((f"{where}.components", "BASE_TYPE_BAD_LENGTH", message))
        return
    kinds = [child.get("type") if isinstance(child, dict) else None for child in children]
    if len(children) > 1 and any(kind in COMPONENT_SELECTS for kind in kinds):
        # A select menu takes the whole row: whatever comes after the first one overflows it.
        for index in range(1, len(children)):
            problems.append(
                (
                    f"{where}.components.{index}",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            )
        return
    for index, child in enumerate(children):
        at = f"{where}.components.{index}"
        if not isinstance(child, dict):
            problems.append((at, *_NOT_A_DICT))
        elif child.get("type") == COMPONENT_BUTTON:
            check_button(child, at, custom_ids, problems)
        elif child.get("type") in COMPONENT_SELECTS:
            _check_select(child, at, custom_ids, problems)
        else:
            choices = ", ".join(str(k) for k in sorted({COMPONENT_BUTTON, *COMPONENT_SELECTS}))
            message = f'Value of field "type" must be one of ({choices}).'
            problems.append((f"{at}.type", "UNION_TYPE_CHOICES", message))


def _check_custom_id(
    custom_id: Any,
    at: str,
    custom_ids: set[str],
    problems: list[FieldError],
    missing: tuple[str, str],
) -> None:
    where = f"{at}.custom_id"
    if custom_id is None or custom_id == "":
        problems.append((where, *missing))
    elif not isinstance(custom_id, str):
        problems.append((where, *_not_a_string(custom_id)))
    elif len(custom_id) > MAX_CUSTOM_ID:
        problems.append((where, *_too_long(MAX_CUSTOM_ID)))
    elif custom_id in custom_ids:
        message = "Component custom id cannot be duplicated"
        problems.append((where, "COMPONENT_CUSTOM_ID_DUPLICATED", message))
    else:
        custom_ids.add(custom_id)


def check_button(
    button: dict[str, Any], at: str, custom_ids: set[str], problems: list[FieldError]
) -> None:
    style = button.get("style")
    if isinstance(style, bool) or style not in BUTTON_STYLES:
        choices = ", ".join(str(s) for s in BUTTON_STYLES)
        message = f"Value must be one of {{{choices}}}."
        problems.append((f"{at}.style", "BASE_TYPE_CHOICES", message))
        return
    label = button.get("label")
    if label is not None and not isinstance(label, str):
        problems.append((f"{at}.label", *_not_a_string(label)))
    elif label is not None and len(label) > MAX_BUTTON_LABEL:
        problems.append((f"{at}.label", *_too_long(MAX_BUTTON_LABEL)))
    disabled = button.get("disabled")
    if disabled is not None and not isinstance(disabled, bool):
        problems.append((f"{at}.disabled", "BASE_TYPE_BOOLEAN", "Must be either true or false."))
    custom_id, url = button.get("custom_id"), button.get("url")
    if style == BUTTON_LINK:
        if not url:
            problems.append((f"{at}.url", "BUTTON_COMPONENT_URL_REQUIRED", "A url is required"))
        elif not isinstance(url, str):
            problems.append((f"{at}.url", *_not_a_string(url)))
        elif not url.lower().startswith(_URL_SCHEMES):
            message = "Scheme must be one of ('http', 'https', 'discord')."
            problems.append((f"{at}.url", "URL_TYPE_INVALID_SCHEME", message))
        elif len(url) > MAX_BUTTON_URL:
            problems.append((f"{at}.url", *_too_long(MAX_BUTTON_URL)))
        if custom_id is not None:
            problems.append((f"{at}.custom_id", *_BOTH))
        return
    if url is not None:
        problems.append((f"{at}.url", *_BOTH))
    missing = ("BUTTON_COMPONENT_CUSTOM_ID_REQUIRED", "A custom id is required")
    _check_custom_id(custom_id, at, custom_ids, problems, missing)


def _check_select(
    select: dict[str, Any], at: str, custom_ids: set[str], problems: list[FieldError]
) -> None:
    missing = ("BASE_TYPE_REQUIRED", "This field is required")
    _check_custom_id(select.get("custom_id"), at, custom_ids, problems, missing)
    if select.get("type") != 3:  # user, role, mentionable, channel selects list no options
        return
    options = select.get("options")
    if not isinstance(options, list) or not 1 <= len(options) <= _MAX_OPTIONS:
        message = f"Must be between 1 and {_MAX_OPTIONS} in length."
        problems.append((f"{at}.options", "BASE_TYPE_BAD_LENGTH", message))
        return
    for index, option in enumerate(options):
        for key in ("label", "value"):
            value = option.get(key) if isinstance(option, dict) else None
            where = f"{at}.options.{index}.{key}"
            if not value:
                problems.append((where, *missing))
            elif not isinstance(value, str):
                problems.append((where, *_not_a_string(value)))
            elif len(value) > _MAX_OPTION_TEXT:
                problems.append((where, *_too_long(_MAX_OPTION_TEXT)))


def walk(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component, rows first and then what they hold, in order (a section's accessory
    after its texts)."""
    for component in components:
        yield component
        yield from walk(component.get("components") or [])
        accessory = component.get("accessory")
        if isinstance(accessory, dict):
            yield accessory


def numbered(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each component without an ``id`` the next free one, from 1, as Discord does."""
    taken = {c["id"] for c in walk(components) if isinstance(c.get("id"), int)}
    next_id = 1
    for component in walk(components):
        if isinstance(component.get("id"), int):
            continue
        while next_id in taken:
            next_id += 1
        component["id"] = next_id
        taken.add(next_id)
    return components


def find_button(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any]:
    """The clickable button with ``custom_id``; `LookupError` when there is none, when it is
    another kind of component, or when it is disabled."""
    for component in walk(components):
        if component.get("custom_id") != custom_id:
            continue
        if component.get("type") != COMPONENT_BUTTON:
            kind = component.get("type")
            raise LookupError(f"{custom_id!r} is a component of type {kind}, not a button")
        if component.get("disabled"):
            raise LookupError(f"the button {custom_id!r} is disabled")
        return component
    known = [c["custom_id"] for c in walk(components) if c.get("custom_id")]
    raise LookupError(f"the message has no button {custom_id!r}; it has {known}")
