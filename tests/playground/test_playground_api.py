"""The playground's page API (playground.web) and its command line (python -m playground)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

import playground.__main__ as cli
from model.bundle import DEFAULT_MODEL_DIR
from playground.discord import Limits
from playground.discord.cdn import clean_filename
from playground.forms import MAX_UPLOAD_BYTES, sniff_content_type
from playground.samples import PICKS, SAMPLE_DIR, regenerate, sample_names
from playground.web import TOKEN_HEADER, PlaygroundServer

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"


def jpeg_bytes(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
async def server() -> AsyncIterator[PlaygroundServer]:
    async with PlaygroundServer(token="page-test-token") as srv:
        yield srv


@pytest.fixture
async def http(server: PlaygroundServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A client of `server`'s page: it sends the token the page is given."""
    async with aiohttp.ClientSession(headers={TOKEN_HEADER: server.web.page_token}) as session:
        yield session


def ws_url(server: PlaygroundServer) -> str:
    """The page's WebSocket, with the token the page is given."""
    return f"{server.base_url}/playground/ws?token={server.web.page_token}"


def form(content: str | None = None, files: list[tuple[str, bytes]] = (), **fields: str):
    data = aiohttp.FormData()
    if content is not None:
        data.add_field("content", content)
    for key, value in fields.items():
        data.add_field(key, value)
    for name, blob in files:
        data.add_field("files", blob, filename=name, content_type="application/octet-stream")
    return data


async def post(
    http: aiohttp.ClientSession, server: PlaygroundServer, path: str, data: Any, **kw: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{server.base_url}{path}", data=data, **kw) as response:
        return response.status, await response.json()


async def register_commands(http: aiohttp.ClientSession, server: PlaygroundServer) -> None:
    """Register commands shaped like the bot's, as discord.py would (PUT with the bot token)."""
    commands = [
        {
            "name": "jedisith",
            "description": "Jedi or Sith? Judge an image.",
            "options": [
                {"type": 11, "name": "image", "description": "The image", "required": True}
            ],
        },
        {
            "name": "features",
            "description": "Show what the network sees in an image.",
            "options": [
                {"type": 11, "name": "image", "description": "The image", "required": True},
                {
                    "type": 4,
                    "name": "layer",
                    "description": "Only this convolution (1-5)",
                    "min_value": 1,
                    "max_value": 5,
                },
            ],
        },
        {"type": 3, "name": "Jedi or Sith?"},
    ]
    url = f"{server.api_url}/applications/{server.application_id}/commands"
    headers = {"Authorization": f"Bot {server.token}"}
    async with http.put(url, json=commands, headers=headers) as response:
        assert response.status == 200, await response.text()


# ------------------------------------------------------------------------------ page, files


async def test_index_and_static_files(server: PlaygroundServer, http: aiohttp.ClientSession):
    async with http.get(f"{server.base_url}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/playground/web/app.js"' in html
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "http://" not in html and "https://" not in html, "nothing from the internet"
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        async with http.get(f"{server.base_url}/playground/web/{name}") as response:
            assert response.status == 200
            assert response.content_type == kind
            body = await response.text()
        assert "http://" not in body and "https://" not in body and "@import" not in body
    for bad in ("nope.js", "..%2Fweb.py", "index.html"):
        async with http.get(f"{server.base_url}/playground/web/{bad}") as response:
            assert response.status == 404


async def test_app_js_never_uses_innerhtml() -> None:
    source = (REPO / "playground" / "web" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source


async def test_samples_listed_and_served(server: PlaygroundServer, http: aiohttp.ClientSession):
    async with http.get(f"{server.base_url}/playground/api/state") as response:
        state = await response.json()
    samples = state["samples"]
    assert [s["label"] for s in samples] == ["jedi"] * 3 + ["sith"] * 3 + ["other"]
    for sample in samples:
        async with http.get(f"{server.base_url}{sample['url']}") as response:
            assert response.status == 200
            assert response.content_type == "image/jpeg"
            data = await response.read()
        assert len(data) < 30 * 1024
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (200, 200)
    for bad in ("nope.jpg", "..%2F__init__.py", "__init__.py"):
        async with http.get(f"{server.base_url}/playground/samples/{bad}") as response:
            assert response.status == 404


def test_samples_regenerate_identically(tmp_path: Path) -> None:
    written = regenerate(tmp_path)
    assert [p.name for p in written] == [name for name, _, _ in PICKS] == sample_names()
    for path in written:
        committed = Image.open(SAMPLE_DIR / path.name).convert("RGB")
        fresh = Image.open(path).convert("RGB")
        assert committed.size == fresh.size
        # Same picture; allow for JPEG encoder differences between Pillow builds.
        diff = sum(abs(a - b) for a, b in zip(committed.tobytes(), fresh.tobytes(), strict=True))
        assert diff / len(fresh.tobytes()) < 2.0


# ------------------------------------------------------------------------------ messages


async def test_post_message_with_file(server: PlaygroundServer, http: aiohttp.ClientSession):
    image = jpeg_bytes()
    status, body = await post(
        http, server, "/playground/api/messages", form("!jedisith", [("photo.jpg", image)])
    )
    assert status == 201
    stored = server.messages[-1]
    assert stored["content"] == "!jedisith"
    assert stored["author"]["id"] == server.human["id"]
    [attachment] = stored["attachments"]
    assert attachment["filename"] == "photo.jpg"
    assert attachment["content_type"] == "image/jpeg"
    view = body["message"]
    assert view["id"] == stored["id"] and view["content"] == "!jedisith"
    [shown] = view["attachments"]
    assert shown["image"] and shown["url"].startswith("/attachments/")  # same-origin path
    async with http.get(f"{server.base_url}{shown['url']}") as response:
        assert await response.read() == image
        assert "sandbox" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_reply_to(server: PlaygroundServer, http: aiohttp.ClientSession) -> None:
    _, first = await post(http, server, "/playground/api/messages", form("", [("a.jpg", b"x")]))
    target = first["message"]["id"]
    status, body = await post(
        http, server, "/playground/api/messages", form("!jedisith", reply_to=target)
    )
    assert status == 201, body
    assert server.messages[-1]["message_reference"]["message_id"] == target
    assert body["message"]["reply_to"]["id"] == target
    for bad in ("123", "not-a-number"):
        status, body = await post(
            http, server, "/playground/api/messages", form("hi", reply_to=bad)
        )
        assert status == 404 and "does not exist" in body["error"]


async def test_html_comes_back_as_text(server: PlaygroundServer, http: aiohttp.ClientSession):
    status, body = await post(http, server, "/playground/api/messages", form(XSS))
    assert status == 201 and body["message"]["content"] == XSS
    async with http.get(f"{server.base_url}/playground/api/state") as response:
        raw = await response.text()
    assert json.loads(raw)["messages"][-1]["content"] == XSS


async def test_too_large_is_refused_with_413(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    assert MAX_UPLOAD_BYTES == 10 * 1024 * 1024
    big = b"\0" * (MAX_UPLOAD_BYTES + 1024)
    status, body = await post(http, server, "/playground/api/messages", form("", [("b.png", big)]))
    assert status == 413 and "10 MB" in body["error"]

    async def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(11):
            yield b"\0" * (1024 * 1024)

    boundary = "x" * 16
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="c.png"\r\n\r\n'
    ).encode()

    async def body_stream():
        yield head
        async for chunk in chunks():
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    status, _ = await post(http, server, "/playground/api/messages", body_stream(), headers=headers)
    assert status == 413
    assert not server.messages
    status, _ = await post(http, server, "/playground/api/messages", form("still fine"))
    assert status == 201


async def test_bad_messages_are_refused(server: PlaygroundServer, http: aiohttp.ClientSession):
    cases = [
        (form(""), 400, "Type something"),
        (form("x" * 2001), 400, "2000"),
        (form("", [(f"{i}.jpg", b"x") for i in range(11)]), 400, "10 files"),
        (b"[1, 2]", 400, "JSON object"),
    ]
    for data, status, words in cases:
        got, body = await post(http, server, "/playground/api/messages", data)
        assert (got, words in body["error"]) == (status, True), body
    assert not server.messages


async def test_filenames_and_types_are_decided_here(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    files = [
        ("../../etc/evil<script>.html", b"<script>alert(1)</script>"),
        ("C:\\Users\\me\\notes.txt", b"hello"),
        ("picture.svg", b"<svg onload=alert(1)></svg>"),
        ("no-extension", jpeg_bytes()),
    ]
    status, body = await post(http, server, "/playground/api/messages", form("", files))
    assert status == 201
    shown = body["message"]["attachments"]
    assert [(a["filename"], a["content_type"], a["image"]) for a in shown] == [
        ("evil_script_.html", "text/html", False),
        ("notes.txt", "text/plain", False),
        ("picture.svg", "image/svg+xml", False),  # a file card on the page, never an <img>
        ("no-extension", "image/jpeg", True),
    ]
    served = {}
    for attachment in shown:
        async with http.get(f"{server.base_url}{attachment['url']}") as response:
            served[attachment["filename"]] = response.headers
    for name in ("evil_script_.html", "picture.svg"):
        assert served[name]["Content-Disposition"] == "attachment"
    for headers in served.values():
        assert "sandbox" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in served["notes.txt"]


def test_clean_filename_and_sniffing() -> None:
    assert clean_filename("../a/b/c.png") == "c.png"
    assert clean_filename("..") == "file"
    assert clean_filename("héllo wörld.jpg") == "h_llo_w_rld.jpg"
    assert clean_filename("\u202egnp.exe") == "gnp.exe"
    long = clean_filename("a" * 300 + ".jpeg")
    assert len(long) <= 100 and long.endswith(".jpeg")
    assert sniff_content_type("x.png", b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_content_type("x.txt", b"GIF89a...") == "image/gif"
    assert sniff_content_type("x.png", b"not a png") == "image/png"  # the bot explains
    assert sniff_content_type("x.html", b"<html>") is None


async def test_other_sites_and_host_names_are_refused(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    url = f"{server.base_url}/playground/api/messages"
    headers = {"Origin": "http://evil.example"}
    async with http.post(url, data=form("hi"), headers=headers) as response:
        assert response.status == 403
    async with http.get(f"{server.base_url}/", headers={"Host": "evil.example"}) as response:
        assert response.status == 403  # DNS rebinding
    headers = {"Origin": server.base_url}
    async with http.post(url, data=form("hi"), headers=headers) as response:
        assert response.status == 201
    local = f"http://localhost:{server.port}/playground/api/state"
    async with http.get(local) as response:
        assert response.status == 200


# ------------------------------------------------------------------------------ interactions


async def test_interactions(server: PlaygroundServer, http: aiohttp.ClientSession) -> None:
    path = "/playground/api/interactions"
    image = ("a.jpg", jpeg_bytes())
    status, body = await post(http, server, path, form(kind="slash", name="jedisith"))
    assert status == 409 and "not registered" in body["error"]

    await register_commands(http, server)
    status, body = await post(
        http, server, path, form(files=[image], kind="slash", name="jedisith")
    )
    assert status == 202 and body["interaction_id"].isdigit()

    status, body = await post(
        http,
        server,
        path,
        form(files=[image], kind="slash", name="features", options='{"layer": 3}'),
    )
    assert status == 202
    refused = [
        (form(kind="slash", name="jedisith"), "needs an attachment"),
        (form(files=[image], kind="slash", name="features", options='{"layer": 9}'), "1 to 5"),
        (form(files=[image], kind="slash", name="features", options='{"depth": 1}'), "no option"),
        (form(files=[image], kind="slash", name="features", options="[]"), "JSON object"),
        (form(files=[image, image], kind="slash", name="jedisith"), "at most 1"),
        (form(kind="other", name="jedisith"), "kind"),
    ]
    for data, words in refused:
        status, body = await post(http, server, path, data)
        assert status == 400 and words in body["error"], body

    message = await server.post_message("look", attachments=[image])
    status, body = await post(
        http, server, path, {"kind": "message", "name": "Jedi or Sith?", "target_id": message["id"]}
    )
    assert status == 202
    status, body = await post(
        http, server, path, {"kind": "message", "name": "Jedi or Sith?", "target_id": "42"}
    )
    assert status == 404
    status, body = await post(
        http, server, path, json.dumps({"kind": "message", "name": "Nope", "target_id": "1"})
    )
    assert status == 409


# ------------------------------------------------------------------------------ live events


async def test_websocket_events(server: PlaygroundServer, http: aiohttp.ClientSession) -> None:
    await server.post_message(XSS)
    async with http.ws_connect(ws_url(server)) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello"
        assert hello["data"]["messages"][-1]["content"] == XSS
        assert hello["data"]["bot"]["name"] == "JediSith"

        _, body = await post(
            http, server, "/playground/api/messages", form("hi", [("a.jpg", jpeg_bytes())])
        )
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "message_create"
        assert event["data"]["id"] == body["message"]["id"]
        assert event["data"]["attachments"][0]["url"].startswith("/attachments/")

        await server.simulate_typing(server.bot_user)
        event = await ws.receive_json(timeout=5)
        assert event == {
            "type": "typing_start",
            "data": {"user_id": server.bot_user["id"], "name": "JediSith", "bot": True},
        }

        await server.delete_message(int(body["message"]["id"]))
        event = await ws.receive_json(timeout=5)
        assert event == {"type": "message_delete", "data": {"id": body["message"]["id"]}}

        await register_commands(http, server)
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "status"
        assert {c["name"] for c in event["data"]["commands"]} >= {"jedisith", "Jedi or Sith?"}


async def test_a_page_that_falls_behind_starts_again(http: aiohttp.ClientSession) -> None:
    srv = PlaygroundServer(limits=Limits(queue=2))
    async with srv, http.ws_connect(ws_url(srv)) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        for i in range(5):  # no await that yields: the page's queue overflows
            await srv.post_message(f"burst {i}")
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "hello"
        assert [m["content"] for m in event["data"]["messages"]] == [f"burst {i}" for i in range(5)]
        await srv.post_message("after")
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "message_create" and event["data"]["content"] == "after"


async def test_page_shows_only_the_default_channel(
    server: PlaygroundServer, http: aiohttp.ClientSession
) -> None:
    elsewhere = list(server.state.guilds.values())[1].channel_ids[0]
    other = await server.post_message("in another guild", channel_id=elsewhere)
    async with http.ws_connect(ws_url(server)) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["data"]["messages"] == []
        assert hello["data"]["channel"]["id"] == str(server.channel_id)
        await server.post_message("also elsewhere", channel_id=elsewhere)
        await server.post_message("here")
        event = await ws.receive_json(timeout=5)
        assert event["type"] == "message_create" and event["data"]["content"] == "here"
    status, body = await post(
        http, server, "/playground/api/messages", form("hi", reply_to=other["id"])
    )
    assert status == 404 and "does not exist" in body["error"]


async def test_close_ends_page_sockets(http: aiohttp.ClientSession) -> None:
    srv = PlaygroundServer()
    await srv.start()
    ws = await http.ws_connect(ws_url(srv))
    await ws.receive_json(timeout=5)
    await asyncio.wait_for(srv.close(), 5)
    message = await ws.receive(timeout=5)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await ws.close()


# ------------------------------------------------------------------------------ command line


def test_port_in_use_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["--port", str(port)])
    assert code != 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("jedisith-playground:")]
    assert lines == [
        f"jedisith-playground: port {port} on 127.0.0.1 is already in use: stop whatever "
        "uses it, or pick another port with --port"
    ]


def test_auto_runs_the_real_bot_when_a_token_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.__main__

    calls: list[list[str]] = []
    monkeypatch.setattr(bot.__main__, "main", lambda argv: calls.append(argv) or 0)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-the-file\n")
    assert cli.main(["--auto", "--env-file", str(env_file)]) == 0
    assert calls == [["--env-file", str(env_file)]]

    assert cli.token_from(tmp_path / "missing.env") is None
    monkeypatch.setenv("DISCORD_TOKEN", "from-the-environment")
    assert cli.token_from(tmp_path / "missing.env") == "from-the-environment"
    monkeypatch.setenv("DISCORD_TOKEN", " ")
    env_file.write_text("DISCORD_TOKEN=\n")
    assert cli.token_from(env_file) is None


def test_bot_environment_points_at_the_look_alike(tmp_path: Path) -> None:
    srv = PlaygroundServer(token="secret-token", port=8080)
    base = {"DISCORD_TOKEN": "real-one", "ALLOWED_CHANNEL_IDS": "1", "PATH": "/bin"}
    env = cli.bot_environment(srv, tmp_path, Path("some/model"), base)
    assert env["DISCORD_TOKEN"] == "secret-token"
    assert env["DISCORD_API_URL"] == "http://127.0.0.1:8080/api/v10"
    assert env["SYNC_COMMANDS"] == "1"
    assert env["DISCORD_GATEWAY_URL"] == env["ALLOWED_CHANNEL_IDS"] == ""
    assert env["MODEL_PATH"] == str(Path("some/model").resolve())
    assert env["TMPDIR"] == str(tmp_path) and env["MPLCONFIGDIR"].startswith(str(tmp_path))
    assert env["DATA_DIR"] == str(tmp_path / "data")  # the playground's lessons end with it
    # Never a developer's model, data or database (issue 19): the shell's (and so .env's,
    # which they override) are replaced; a blank DATABASE_URL is SQLite in DATA_DIR.
    developer = {
        **base,
        "DATA_DIR": "/srv/jedisith",
        "MODEL_PATH": "/srv/models",
        "DATABASE_URL": "postgresql+psycopg://me:pw@db/jedisith",
    }
    own = cli.bot_environment(srv, tmp_path, None, developer)
    assert own["DATA_DIR"] == str(tmp_path / "data") and own["DATABASE_URL"] == ""
    assert own["MODEL_PATH"] == str(DEFAULT_MODEL_DIR.resolve())  # never written to


@pytest.mark.slow
def test_bot_that_dies_is_reported(tmp_path: Path) -> None:
    """A bot that cannot start (no model there) ends the playground with a non-zero code."""
    env = {**os.environ, "DISCORD_TOKEN": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "playground", "--port", "0", "--model", str(tmp_path / "none")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Playground ready" not in result.stdout
    assert "bot | jedisith-bot: cannot load the model" in result.stderr
    assert "the bot stopped unexpectedly (exit code 1)" in result.stderr
