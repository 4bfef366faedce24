"""Layout ("V2") messages, as Discord checks them: a message flagged IS_COMPONENTS_V2 carries
no ``content`` or ``embeds`` (nor poll or stickers), only components: action rows, sections
(1-3 text displays and a thumbnail or button accessory), text displays, media galleries (1-10
items), files, separators and containers (an ``accent_color`` and the same children but
containers), at most 40 in all and 4,000 characters of text. Once set, the flag stays.

`normalise` answers 400 Invalid Form Body (50035) naming every broken rule, as
`components.normalise` does for action rows, whose rules (buttons, selects) it reuses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from playground.discord import components
from playground.discord.errors import FieldError, form_error, form_errors
from playground.discord.protocol import (
    COMPONENT_ACTION_ROW,
    COMPONENT_BUTTON,
    COMPONENT_CONTAINER,
    COMPONENT_FILE,
    COMPONENT_MEDIA_GALLERY,
    COMPONENT_SECTION,
    COMPONENT_SEPARATOR,
    COMPONENT_TEXT_DISPLAY,
    COMPONENT_THUMBNAIL,
    FLAG_COMPONENTS_V2,
    MAX_LAYOUT_COMPONENTS,
    MAX_LAYOUT_TEXT,
)

TOP_LEVEL = (
    COMPONENT_ACTION_ROW,
    COMPONENT_SECTION,
    COMPONENT_TEXT_DISPLAY,
    COMPONENT_MEDIA_GALLERY,
    COMPONENT_FILE,
    COMPONENT_SEPARATOR,
    COMPONENT_CONTAINER,
)
IN_CONTAINER = tuple(kind for kind in TOP_LEVEL if kind != COMPONENT_CONTAINER)
LEGACY_FIELDS = ("content", "embeds", "poll", "sticker_ids")
_LEGACY = "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2"
_MAX_GALLERY = 10
_MAX_DESCRIPTION = 1024


def is_layout(flags: Any) -> bool:
    return bool(int(flags or 0) & FLAG_COMPONENTS_V2)


def message_text(message: Mapping[str, Any]) -> str:
    """A message's text as a person reads it: its content, or a layout's text displays in order."""
    if not is_layout(message.get("flags")):
        return message.get("content") or ""
    texts = components.walk(message.get("components") or [])
    return "\n".join(c["content"] for c in texts if c["type"] == COMPONENT_TEXT_DISPLAY)


def check_fields(payload: Mapping[str, Any], path: str = "") -> None:
    """400 when a layout message also carries content, embeds, a poll or stickers."""
    problems = [
        (f"{path}{key}", _LEGACY, f"The '{key}' field cannot be used with IS_COMPONENTS_V2.")
        for key in LEGACY_FIELDS
        if payload.get(key)
    ]
    if problems:
        raise form_errors(problems)


def check_kept(old_flags: int, new_flags: Any, path: str = "") -> None:
    """400 when an edit would take the IS_COMPONENTS_V2 flag off a layout message."""
    if new_flags is None or not old_flags & FLAG_COMPONENTS_V2 or is_layout(new_flags):
        return
    message = "The IS_COMPONENTS_V2 flag cannot be removed from a message."
    raise form_error(f"{path}flags", "MESSAGE_CANNOT_REMOVE_COMPONENTS_V2_FLAG", message)


def message_components(given: Any, flags: Any, path: str = "components") -> list[dict[str, Any]]:
    """A message's components, checked by the rules its flags choose."""
    if is_layout(flags):
        return normalise(given, path)
    return components.normalise(given, path)


def normalise(layout: Any, path: str = "components") -> list[dict[str, Any]]:
    """The components a layout message will carry, numbered, or `DiscordError` 400 naming
    every broken rule (``path``: where the request holds them)."""
    if layout is None:
        return []
    if not isinstance(layout, list):
        raise form_error(path, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    problems: list[FieldError] = []
    custom_ids: set[str] = set()
    for index, component in enumerate(layout):
        _check(component, f"{path}.{index}", TOP_LEVEL, custom_ids, problems)
    if problems:
        raise form_errors(problems)
    count = sum(1 for _ in components.walk(layout))
    if count > MAX_LAYOUT_COMPONENTS:
        message = f"Must be {MAX_LAYOUT_COMPONENTS} or fewer components in all (not {count})."
        raise form_error(path, "MESSAGE_COMPONENTS_TOO_MANY", message)
    text = sum(len(c.get("content") or "") for c in components.walk(layout) if c.get("type") == 10)
    if text > MAX_LAYOUT_TEXT:
        message = f"Text displays must hold {MAX_LAYOUT_TEXT} or fewer characters (not {text})."
        raise form_error(path, "MESSAGE_COMPONENTS_TEXT_TOO_LONG", message)
    return components.numbered(copy.deepcopy(layout))


def _type_choices(at: str, allowed: tuple[int, ...]) -> FieldError:
    choices = ", ".join(str(kind) for kind in allowed)
    return (
        f"{at}.type",
        "UNION_TYPE_CHOICES",
        f'Value of field "type" must be one of ({choices}).',
    )


def _check(
    component: Any,
    at: str,
    allowed: tuple[int, ...],
    custom_ids: set[str],
    problems: list[FieldError],
) -> None:
    if not isinstance(component, dict):
        problems.append((at, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType"))
        return
    kind = component.get("type")
    if kind not in allowed:
        problems.append(_type_choices(at, allowed))
    elif kind == COMPONENT_ACTION_ROW:
        components.check_row(component, at, custom_ids, problems)
    elif kind == COMPONENT_TEXT_DISPLAY:
        _check_text(component, at, problems)
    elif kind == COMPONENT_SECTION:
        _check_section(component, at, custom_ids, problems)
    elif kind == COMPONENT_MEDIA_GALLERY:
        _check_gallery(component, at, problems)
    elif kind == COMPONENT_FILE:
        _check_media(component.get("file"), f"{at}.file", problems)
    elif kind == COMPONENT_SEPARATOR:
        if component.get("spacing", 1) not in (1, 2):
            problems.append((f"{at}.spacing", "BASE_TYPE_CHOICES", "Value must be one of {1, 2}."))
    elif kind == COMPONENT_CONTAINER:
        _check_container(component, at, custom_ids, problems)


def _check_text(component: dict[str, Any], at: str, problems: list[FieldError]) -> None:
    content = component.get("content")
    if not isinstance(content, str) or not content:
        problems.append((f"{at}.content", "BASE_TYPE_REQUIRED", "This field is required"))


def _check_media(media: Any, at: str, problems: list[FieldError]) -> None:
    url = media.get("url") if isinstance(media, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "attachment://")):
        message = "Scheme must be one of ('http', 'https', 'attachment')."
        problems.append((f"{at}.url", "URL_TYPE_INVALID_SCHEME", message))


def _check_description(item: dict[str, Any], at: str, problems: list[FieldError]) -> None:
    description = item.get("description")
    if description is not None and len(str(description)) > _MAX_DESCRIPTION:
        message = f"Must be {_MAX_DESCRIPTION} or fewer in length."
        problems.append((f"{at}.description", "BASE_TYPE_MAX_LENGTH", message))


def _check_section(
    section: dict[str, Any], at: str, custom_ids: set[str], problems: list[FieldError]
) -> None:
    texts = section.get("components")
    if not isinstance(texts, list) or not 1 <= len(texts) <= 3:
        message = "Must be between 1 and 3 in length."
        problems.append((f"{at}.components", "BASE_TYPE_BAD_LENGTH", message))
    else:
        for index, text in enumerate(texts):
            _check(
                text, f"{at}.components.{index}", (COMPONENT_TEXT_DISPLAY,), custom_ids, problems
            )
    accessory = section.get("accessory")
    where = f"{at}.accessory"
    if not isinstance(accessory, dict):
        problems.append((where, "BASE_TYPE_REQUIRED", "This field is required"))
    elif accessory.get("type") == COMPONENT_THUMBNAIL:
        _check_media(accessory.get("media"), f"{where}.media", problems)
        _check_description(accessory, where, problems)
    elif accessory.get("type") == COMPONENT_BUTTON:
        components.check_button(accessory, where, custom_ids, problems)
    else:
        problems.append(_type_choices(where, (COMPONENT_BUTTON, COMPONENT_THUMBNAIL)))


def _check_gallery(gallery: dict[str, Any], at: str, problems: list[FieldError]) -> None:
    items = gallery.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= _MAX_GALLERY:
        message = f"Must be between 1 and {_MAX_GALLERY} in length."
        problems.append((f"{at}.items", "BASE_TYPE_BAD_LENGTH", message))
        return
    for index, item in enumerate(items):
        where = f"{at}.items.{index}"
        if not isinstance(item, dict):
            problems.append((where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used"))
            continue
        _check_media(item.get("media"), f"{where}.media", problems)
        _check_description(item, where, problems)


def _check_container(
    container: dict[str, Any], at: str, custom_ids: set[str], problems: list[FieldError]
) -> None:
    colour = container.get("accent_color")
    if colour is not None and (
        isinstance(colour, bool) or not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF
    ):
        message = "Int value should be between 0 and 16777215."
        problems.append((f"{at}.accent_color", "NUMBER_TYPE_MAX", message))
    children = container.get("components")
    if not isinstance(children, list) or not children:
        message = "Must be 1 or more in length."
        problems.append((f"{at}.components", "BASE_TYPE_MIN_LENGTH", message))
        return
    for index, child in enumerate(children):
        _check(child, f"{at}.components.{index}", IN_CONTAINER, custom_ids, problems)


def resolve_media(layout: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> None:
    """Turn ``attachment://name`` media into the attachment's CDN URL, as Discord does."""
    by_name = {a["filename"]: a for a in attachments}
    for component in components.walk(layout):
        media = [component.get("media"), component.get("file")]
        media += [item.get("media") for item in component.get("items") or []]
        for item in media:
            url = str(item.get("url", "")) if isinstance(item, dict) else ""
            target = by_name.get(url.removeprefix("attachment://"))
            if url.startswith("attachment://") and target is not None:
                item.update(url=target["url"], proxy_url=target["proxy_url"])
