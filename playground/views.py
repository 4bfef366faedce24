"""What the playground's page shows of the look-alike's payloads: users, attachments,
messages (with their buttons, or their layout: `layout_view`), commands and feed events, as
plain JSON (text stays text, never HTML; only http(s) links)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from model.preprocess import IMAGE_TYPES
from playground.discord import FLAG_EPHEMERAL, FLAG_LOADING
from playground.discord.protocol import FLAG_COMPONENTS_V2

IMAGE_MIME_TYPES = frozenset(IMAGE_TYPES.values())  # what the page shows as an <img>
BUTTON_STYLES = {1: "primary", 2: "secondary", 3: "success", 4: "danger", 5: "link"}


def relative(url: str) -> str:
    """A CDN URL as a path, so the page loads it from its own origin."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def user_view(user: dict[str, Any] | None, bot_name: str | None = None) -> dict[str, Any] | None:
    """A user as the page shows it; bots (no global name) go by `bot_name` when given."""
    if not user:
        return None
    bot = bool(user.get("bot", False))
    name = user.get("global_name") or (bot and bot_name) or user.get("username") or "unknown"
    return {
        "id": str(user["id"]),
        "username": str(user.get("username") or ""),
        "name": str(name),
        "bot": bot,
    }


def attachment_view(attachment: dict[str, Any]) -> dict[str, Any]:
    ctype = str(attachment.get("content_type") or "application/octet-stream")
    return {
        "id": str(attachment["id"]),
        "filename": str(attachment.get("filename") or "file"),
        "url": relative(str(attachment.get("url") or "")),
        "content_type": ctype,
        "size": int(attachment.get("size") or 0),
        "width": attachment.get("width"),
        "height": attachment.get("height"),
        "image": ctype in IMAGE_MIME_TYPES,
    }


def button_view(component: dict[str, Any]) -> dict[str, Any]:
    """A button (or, shown as a disabled one, a select menu) as the page draws it."""
    if component.get("type") != 2:
        label = component.get("placeholder") or "Select menus are not shown here"
        return {
            "style": "secondary",
            "label": str(label),
            "emoji": "",
            "custom_id": None,
            "url": None,
            "disabled": True,
        }
    emoji = component.get("emoji") or {}
    url = str(component.get("url") or "")
    return {
        "style": BUTTON_STYLES.get(int(component.get("style") or 2), "secondary"),
        "label": str(component.get("label") or ""),
        "emoji": str(emoji.get("name") or "") if not emoji.get("id") else "",
        "custom_id": component.get("custom_id"),
        "url": url if url.startswith(("https://", "http://")) else None,
        "disabled": bool(component.get("disabled")),
    }


def components_view(rows: list[dict[str, Any]] | None) -> list[list[dict[str, Any]]]:
    """A message's action rows, each a list of buttons."""
    return [[button_view(c) for c in row.get("components") or []] for row in rows or []]


def media_url(media: Any) -> str | None:
    """A layout's image (thumbnail, gallery item) as the page loads it: http(s) only."""
    url = str(media.get("url") or "") if isinstance(media, dict) else ""
    return relative(url) if url.startswith(("https://", "http://")) else None


def layout_view(components: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A layout message's components as the page draws them (`playground/web/layout.js`):
    containers (with an accent as #rrggbb), sections, texts, thumbnails, galleries,
    separators, files and rows of buttons."""
    shown: list[dict[str, Any]] = []
    for component in components or []:
        kind = component.get("type")
        if kind == 17:
            accent = component.get("accent_color")
            colour = f"#{int(accent):06x}" if isinstance(accent, int) else None
            children = layout_view(component.get("components"))
            shown.append({"type": "container", "accent": colour, "children": children})
        elif kind == 9:
            accessory = component.get("accessory") or {}
            side = layout_view([accessory]) if isinstance(accessory, dict) else []
            texts = layout_view(component.get("components"))
            shown.append({"type": "section", "children": texts, "accessory": side[:1]})
        elif kind == 10:
            shown.append({"type": "text", "content": str(component.get("content") or "")})
        elif kind == 11:
            url = media_url(component.get("media"))
            shown.append({"type": "thumbnail", "url": url})
        elif kind == 12:
            items = [media_url(item.get("media")) for item in component.get("items") or []]
            shown.append({"type": "gallery", "urls": [url for url in items if url]})
        elif kind == 14:
            shown.append({"type": "separator", "divider": component.get("divider", True)})
        elif kind == 1:
            shown.append({"type": "row", "buttons": components_view([component])[0]})
        elif kind == 2:
            shown.append({"type": "row", "buttons": [button_view(component)]})
    return shown


def layout_text(message: dict[str, Any]) -> str:
    """A layout message's text displays, in order (what a reply to it previews)."""
    found: list[str] = []
    stack = list(reversed(message.get("components") or []))
    while stack:
        component = stack.pop()
        if component.get("type") == 10:
            found.append(str(component.get("content") or ""))
        stack.extend(reversed(component.get("components") or []))
    return " ".join(found)


def message_view(message: dict[str, Any], bot_name: str | None = None) -> dict[str, Any]:
    """What the page needs of a Discord message payload."""
    flags = int(message.get("flags") or 0)
    layout = bool(flags & FLAG_COMPONENTS_V2)
    view: dict[str, Any] = {
        "id": str(message["id"]),
        "type": int(message.get("type") or 0),
        "content": str(message.get("content") or ""),
        "timestamp": message.get("timestamp"),
        "edited": bool(message.get("edited_timestamp")),
        "flags": flags,
        "ephemeral": bool(flags & FLAG_EPHEMERAL),
        "loading": bool(flags & FLAG_LOADING),
        "author": user_view(message.get("author"), bot_name),
        "attachments": [attachment_view(a) for a in message.get("attachments") or []],
        "components": [] if layout else components_view(message.get("components")),
        "layout": layout_view(message.get("components")) if layout else None,
        "reply_to": None,
        "interaction": None,
    }
    reference = message.get("message_reference") or {}
    if reference.get("message_id"):
        referenced = message.get("referenced_message") or {}
        view["reply_to"] = {
            "id": str(reference["message_id"]),
            "author": user_view(referenced.get("author"), bot_name),
            "content": (referenced.get("content") or layout_text(referenced))[:200],
            "attachments": len(referenced.get("attachments") or []),
        }
    metadata = message.get("interaction_metadata")
    if metadata:
        view["interaction"] = {
            "id": str(metadata.get("id")),
            "type": int(metadata.get("type") or 2),  # 3: a click, answered as a reply
            "name": str(metadata.get("name") or ""),
            "command_type": int(metadata.get("command_type") or 1),
            "user": user_view(metadata.get("user"), bot_name),
            "target_message_id": metadata.get("target_message_id"),
            "interacted_message_id": metadata.get("interacted_message_id"),
        }
    return view


def command_view(command: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": command["name"],
        "type": int(command.get("type") or 1),
        "description": command.get("description") or "",
        "options": [
            {
                key: option.get(key)
                for key in ("name", "type", "description", "required", "min_value", "max_value")
            }
            for option in command.get("options") or []
        ],
    }


def event_view(event: dict[str, Any], bot_name: str | None = None) -> dict[str, Any] | None:
    """A feed event as the page's socket sends it; None for events the page does not show."""
    kind, data = event["type"], event["data"]
    if kind in ("message_create", "message_update"):
        return {"type": kind, "data": message_view(data, bot_name)}
    if kind == "message_delete":
        return {"type": kind, "data": {"id": str(data["id"])}}
    if kind == "typing_start":
        user = user_view(data.get("user"), bot_name) or {"name": "Someone", "bot": False}
        return {
            "type": kind,
            "data": {"user_id": str(data["user_id"]), "name": user["name"], "bot": user["bot"]},
        }
    return None
