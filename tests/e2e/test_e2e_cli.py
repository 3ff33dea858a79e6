"""`python -m emulators` as a person meets it: defaults, the URL, Ctrl-C, a malformed settings file,
a missing web client, --in-memory, --host, and logs without secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import sys

import pytest
from e2e_helpers import ROOT, ChatClient, fresh_room, history, post, stack_args

from emulators.__main__ import Stack, missing_web_client, parse_args
from emulators.cosmos import WELL_KNOWN_KEY
from emulators.signalr import WELL_KNOWN_ACCESS_KEY
from emulators.smoke import negotiate
from tests.conftest import find_free_port


def ports_args() -> list[str]:
    return [
        "--port",
        str(find_free_port()),
        "--cosmos-port",
        str(find_free_port()),
        "--signalr-port",
        str(find_free_port()),
    ]


def test_defaults_are_the_documented_ports_and_data_dir():
    args = parse_args([])
    assert (args.host, args.port, args.cosmos_port, args.signalr_port) == ("127.0.0.1", 7071, 8081, 8888)
    assert args.data_dir == ROOT / ".data" and not args.in_memory
    assert args.app_dir == ROOT / "functions"


async def test_prints_the_url_and_stops_cleanly_on_ctrl_c():
    argv = ["--in-memory", *ports_args()]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith(f"Cosmic Chat is running at http://127.0.0.1:{argv[2]}/ ")
        assert "ready in" in line and "Ctrl-C stops it" in line
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0
    assert out.decode().strip() == "Cosmic Chat stopped"
    assert "Traceback" not in err.decode()


async def test_a_malformed_local_settings_file_is_a_one_line_error(tmp_path):
    app = tmp_path / "functions"
    skip = shutil.ignore_patterns("local.settings.json", "__pycache__")
    shutil.copytree(ROOT / "functions", app, ignore=skip)
    (app / "local.settings.json").write_text('{"Values": {"A": "1",}}')
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators",
        "--in-memory",
        "--app-dir",
        str(app),
        *ports_args(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines  # nothing started, nothing else printed
    assert lines[0].startswith(f"error: {app / 'local.settings.json'}: not valid JSON")


def test_a_missing_web_client_install_is_named_with_the_fix(tmp_path):
    app = tmp_path / "functions"
    app.mkdir()
    www = tmp_path / "www"
    www.mkdir()
    (www / "package.json").write_text(json.dumps({"dependencies": {"@microsoft/signalr": "^8.0.7"}}))
    warning = missing_web_client(app)
    assert warning is not None
    assert "@microsoft/signalr" in warning and "make install" in warning and "npm ci" in warning
    (www / "node_modules" / "@microsoft" / "signalr").mkdir(parents=True)
    (www / "node_modules" / "@microsoft" / "signalr" / "package.json").write_text("{}")
    assert missing_web_client(app) is None
    assert missing_web_client(app, www_root=str(tmp_path / "elsewhere")) is None  # WWW_ROOT wins


async def test_in_memory_keeps_nothing(tmp_path, http):
    data = tmp_path / "data"
    for _ in range(2):
        stack = Stack()
        try:
            await stack.start(stack_args(in_memory=True, data_dir=data))
            assert stack.warnings == []  # www/node_modules is installed (make test does it)
            base = stack.functions.url
            assert await history(http, base, "memory") == []  # the previous run left nothing
            await post(http, base, "memory", "ann", "gone when stopped")
        finally:
            await stack.close()
    assert not data.exists() or not any(data.rglob("*"))


async def test_host_sets_the_interface_and_the_settings_follow(http):
    stack = Stack()
    try:
        await stack.start(stack_args(host="127.0.0.2"))
        assert stack.functions.url.startswith("http://127.0.0.2:")
        assert stack.cosmos.url.startswith("http://127.0.0.2:")
        base = stack.functions.url
        room = fresh_room()
        client = ChatClient(http, base, room)
        await client.connect()
        try:
            assert client.listener.url.startswith(f"http://127.0.0.2:{stack.signalr.port}/")
            sent = await post(http, base, room, "ann", "on 127.0.0.2")
            assert await client.wait_for_ids({sent["id"]})
        finally:
            await client.disconnect()
    finally:
        await stack.close()


async def test_logs_carry_no_keys_or_tokens(stack, http, caplog):
    caplog.set_level(logging.INFO)
    base = stack.functions.url
    room = fresh_room()
    client = ChatClient(http, base, room)
    await client.connect()
    try:
        sent = await post(http, base, room, "ann", "hello")
        assert await client.wait_for_ids({sent["id"]})
        token = (await negotiate(http, base, client.who))["accessToken"]
        async with http.post(
            f"{base}/api/rooms/{room}/messages",
            data=b"{not json",
            headers={**client.who.headers, "Content-Type": "application/json"},
        ) as r:
            assert r.status == 400
    finally:
        await client.disconnect()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SaveChat http POST" in text  # the invocation lines were captured
    for secret in (
        WELL_KNOWN_KEY,
        WELL_KNOWN_ACCESS_KEY,
        token,
        token.split(".")[-1],
        "AccountKey=",
        "AccessKey=",
        client.who.token,
        client.who.token.split(".")[-1],
    ):
        assert secret not in text


def test_a_port_out_of_range_is_refused_by_the_option_parser(capsys):
    with pytest.raises(SystemExit) as e:
        parse_args(["--cosmos-port", "70000"])
    assert e.value.code == 2
    assert "argument --cosmos-port: 70000 is not a port number (0-65535)" in capsys.readouterr().err


async def test_an_app_dir_without_function_app_is_a_one_line_error(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators",
        "--in-memory",
        "--app-dir",
        str(tmp_path),
        *ports_args(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and out == b""
    assert err.decode().splitlines() == [
        f"error: {tmp_path / 'function_app.py'} not found: --app-dir must be a Python v2 Function App"
    ]
