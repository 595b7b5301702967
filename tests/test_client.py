"""The reference client (server/client.py) without the real server: imports, bundling, error mapping.

The peers here are tiny WebSocket servers written for each test (a server that answers garbage, one
that never answers...), to reach the client's error paths; the round trips against the real server
are in test_server.py.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from contextlib import contextmanager
from pathlib import Path

import msgpack
import pytest
from websockets.sync.server import serve

from server import CLIENT_SOURCES, client, protocol

BLOCK = "import sys\nfor _n in ('torch', 'numpy', 'PIL', 'cv2', 'core'):\n    sys.modules[_n] = None\n"


def _run(code: str, cwd: Path | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_client_imports_without_torch_or_numpy():
    assert _run("from server import client; print(client.DEFAULT_URL)") == "ws://127.0.0.1:8765"


def test_client_works_bundled_in_a_plugin_package(tmp_path):
    """As the plug-ins ship it: protocol.py and client.py copied into a vendored package."""
    pkg = tmp_path / "myplugin" / "vendor" / "lrclient"
    pkg.mkdir(parents=True)
    for name, source in CLIENT_SOURCES.items():
        shutil.copy(source, pkg / name)
    for folder in (tmp_path / "myplugin", tmp_path / "myplugin" / "vendor", pkg):
        (folder / "__init__.py").write_text("")
    out = _run(
        """
        from myplugin.vendor.lrclient import client, protocol
        assert client.protocol is protocol
        print(client.restore.__name__, protocol.PROTOCOL_VERSION)
        """,
        cwd=tmp_path,
    )
    assert out == f"restore {protocol.PROTOCOL_VERSION}"


def test_client_works_as_top_level_modules(tmp_path):
    """Fallback: both files in one folder on sys.path, imported as top-level modules."""
    for name, source in CLIENT_SOURCES.items():
        shutil.copy(source, tmp_path / name)
    out = _run("import client, protocol\nassert client.protocol is protocol\nprint('ok')", cwd=tmp_path)
    assert out == "ok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_server_says_how_to_start_one():
    url = f"ws://127.0.0.1:{_free_port()}"
    with pytest.raises(client.ServerUnavailableError) as info:
        client.restore(url, b"\xff", 1, 1, "gray8")
    err = info.value
    assert isinstance(err, ConnectionError) and isinstance(err, client.ClientError)
    assert err.code == "server_unavailable" and "python -m server" in str(err) and url in str(err)
    with pytest.raises(client.ServerUnavailableError):
        asyncio.run(client.restore_async(url, b"\xff", 1, 1, "gray8"))


def test_bad_url():
    with pytest.raises(client.ClientError) as info:
        client.Client("http://127.0.0.1:1").connect()
    assert info.value.code == "bad_url"


def test_error_tree():
    for cls in (
        client.ServerUnavailableError,
        client.ConnectionLostError,
        client.HandshakeRefusedError,
        client.BadReplyError,
        client.RequestTimeoutError,
        client.ServerError,
        client.RequestCancelledError,
    ):
        assert issubclass(cls, client.ClientError)
    assert issubclass(client.RequestCancelledError, client.ServerError)
    assert issubclass(client.RequestTimeoutError, TimeoutError)
    err = client.ServerError("too big", "too_large", "r1")
    assert err.code == "too_large" and err.request_id == "r1" and "too big" in str(err)


# ---- misbehaving peers ---------------------------------------------------------------------------------


@contextmanager
def peer(handler):
    """A throw-away WebSocket server on a free loopback port running ``handler(ws)``."""
    with serve(handler, "127.0.0.1", 0) as srv:
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{srv.socket.getsockname()[1]}"
        finally:
            srv.shutdown()
            thread.join()


WELCOME = protocol.encode(
    protocol.Welcome(
        server_version="test",
        device="cpu",
        models=["default"],
        formats=["gray8"],
        options=protocol.options_schema(),
        limits=protocol.Limits(max_pixels=100),
    )
)


def test_garbage_reply_is_a_bad_reply():
    def handler(ws):
        ws.recv()
        ws.send(b"\xc1 not msgpack")

    with peer(handler) as url, pytest.raises(client.BadReplyError) as info:
        client.Client(url).connect()
    assert info.value.code == "bad_message"


def test_other_protocol_version_is_reported():
    def handler(ws):
        ws.recv()
        raw = msgpack.unpackb(WELCOME)
        raw["v"] = protocol.PROTOCOL_VERSION + 1
        ws.send(msgpack.packb(raw))

    with peer(handler) as url, pytest.raises(client.BadReplyError) as info:
        client.Client(url).connect()
    assert info.value.code == "unsupported_version"


def test_server_error_during_handshake():
    def handler(ws):
        ws.recv()
        ws.send(protocol.encode(protocol.Error(code="unsupported_version", message="speak v1")))

    with peer(handler) as url, pytest.raises(client.ServerError) as info:
        client.Client(url).connect()
    assert info.value.code == "unsupported_version"


def test_local_checks_before_sending():
    received = []

    def handler(ws):
        received.append(protocol.decode(ws.recv()))
        ws.send(WELCOME)
        for raw in ws:
            received.append(protocol.decode(raw))

    with peer(handler) as url, client.Client(url) as c:
        with pytest.raises(client.ServerError) as info:
            c.restore(b"\xff" * 121, 11, 11, "gray8")  # 121 pixels > max_pixels 100
        assert info.value.code == "too_large"
        with pytest.raises(client.ServerError) as info:
            c.restore(b"\xff" * 3, 2, 2, "gray8")  # 3 bytes for 4 pixels
        assert info.value.code == "invalid_image"
        with pytest.raises(client.ServerError) as info:
            c.restore(b"\xff", 1, 1, "cmyk8")
        assert info.value.code == "invalid_image"
        with pytest.raises(client.ServerError) as info:
            c.restore(b"\xff", 1, 1, "gray8", {"mask": "otsu", "strength": 3})
        assert info.value.code == "invalid_option" and "strength" in str(info.value)
    assert [type(m) for m in received] == [protocol.Hello]  # nothing bad was sent


def test_timeout_cancels_the_request():
    received = []
    got_cancel = threading.Event()

    def handler(ws):
        ws.recv()
        ws.send(WELCOME)
        for raw in ws:
            msg = protocol.decode(raw)
            received.append(msg)
            if isinstance(msg, protocol.Restore):
                ws.send(protocol.encode(protocol.Queued(id=msg.id, position=1, depth=2)))
            if isinstance(msg, protocol.Cancel):
                got_cancel.set()

    queued = []
    with peer(handler) as url, client.Client(url) as c:
        with pytest.raises(client.RequestTimeoutError):
            c.restore(b"\xff", 1, 1, "gray8", timeout=0.5, request_id="slow", on_queued=lambda *a: queued.append(a))
        assert got_cancel.wait(5)
    assert queued == [(1, 2)]
    assert isinstance(received[-1], protocol.Cancel) and received[-1].id == "slow"


def test_messages_of_other_requests_are_ignored_and_result_returned():
    def handler(ws):
        ws.recv()
        ws.send(WELCOME)
        msg = protocol.decode(ws.recv())
        ws.send(protocol.encode(protocol.Progress(id="someone-else", fraction=0.5)))
        ws.send(protocol.encode(protocol.Progress(id=msg.id, fraction=0.5)))
        ws.send(protocol.encode(protocol.Result(id=msg.id, width=1, height=1, format="gray8", data=b"\x00")))

    seen = []
    with peer(handler) as url:
        res = client.restore(url, b"\xff", 1, 1, "gray8", on_progress=seen.append)
    assert res.data == b"\x00" and seen == [0.5]


def _echo_options(schema):
    """A peer that greets with ``schema`` as its options and answers each restore; the options of
    every request it got are appended to the returned list."""
    got = []
    welcome = protocol.encode(
        protocol.Welcome(
            server_version="test",
            device="cpu",
            models=["default"],
            formats=["gray8"],
            options=schema,
            limits=protocol.Limits(),
        )
    )

    def handler(ws):
        ws.recv()
        ws.send(welcome)
        for raw in ws:
            msg = protocol.decode(raw)
            got.append(msg.options)
            ws.send(protocol.encode(protocol.Result(id=msg.id, width=1, height=1, format="gray8", data=b"\x00")))

    return handler, got


def _jpeg_file(folder: Path, qtables) -> Path:
    from PIL import Image

    path = folder / "drawing.jpg"
    Image.new("L", (16, 16), 255).save(path, "JPEG", qtables=qtables)
    return path


def test_a_jpeg_source_file_sends_its_table_when_the_server_takes_it(tmp_path):
    own = [[(7 * i) % 50 + 1 for i in range(64)]]
    jpeg = _jpeg_file(tmp_path, own)
    png = tmp_path / "drawing.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    handler, got = _echo_options(protocol.options_schema())
    with peer(handler) as url, client.Client(url) as c:
        assert c.takes_option("jpeg_table") and not c.takes_option("strength")
        c.restore(b"\xff", 1, 1, "gray8", source_file=jpeg)
        c.restore(b"\xff", 1, 1, "gray8", {"jpeg_consistency": False}, source_file=jpeg)
        c.restore(b"\xff", 1, 1, "gray8", {"jpeg_table": [9] * 64}, source_file=jpeg)  # the caller's wins
        c.restore(b"\xff", 1, 1, "gray8", source_file=png)
        c.restore(b"\xff", 1, 1, "gray8", source_file=tmp_path / "gone.jpg")
        c.restore(b"\xff", 1, 1, "gray8")
    tables = [o.jpeg_table for o in got]
    assert tables == [own[0], None, [9] * 64, None, None, None]

    async def go():
        async with client.AsyncClient(url2) as c:
            await c.restore(b"\xff", 1, 1, "gray8", source_file=str(jpeg))

    handler2, got2 = _echo_options(protocol.options_schema())
    with peer(handler2) as url2:
        asyncio.run(go())
        client.restore(url2, b"\xff", 1, 1, "gray8", source_file=jpeg)
    assert [o.jpeg_table for o in got2] == [own[0], own[0]]


def test_an_option_the_server_does_not_list_is_refused_before_sending():
    older = {k: v for k, v in protocol.options_schema().items() if k != "ensemble"}
    handler, got = _echo_options(older)
    with peer(handler) as url, client.Client(url) as c:
        with pytest.raises(client.ServerError) as e:
            c.restore(b"\xff", 1, 1, "gray8", {"ensemble": 4, "mask": "otsu"})
        assert e.value.code == "invalid_option" and "the option 'ensemble'" in e.value.message
        assert got == []  # nothing went out
        c.restore(b"\xff", 1, 1, "gray8", {"ensemble": 1, "mask": "otsu"})  # at its default: fine

    async def go():
        async with client.AsyncClient(url2) as c:
            with pytest.raises(client.ServerError, match="options 'normalize_ink', 'ensemble'"):
                await c.restore(b"\xff", 1, 1, "gray8", {"ensemble": 2, "normalize_ink": False})

    handler2, got2 = _echo_options({k: v for k, v in older.items() if k != "normalize_ink"})
    with peer(handler2) as url2:
        asyncio.run(go())
    assert got == [protocol.Options(mask=protocol.MaskMethod.OTSU)] and got2 == []


def test_an_older_server_without_the_option_gets_no_table(tmp_path):
    """A server that predates ``jpeg_table`` would refuse it as an unknown option: not sent."""
    schema = protocol.options_schema()
    del schema["jpeg_table"]
    handler, got = _echo_options(schema)
    with peer(handler) as url:
        res = client.restore(url, b"\xff", 1, 1, "gray8", source_file=_jpeg_file(tmp_path, [[4] * 64]))
    assert res.data == b"\x00" and [o.jpeg_table for o in got] == [None]


def test_connection_dropped_mid_request():
    def handler(ws):
        ws.recv()
        ws.send(WELCOME)
        ws.recv()
        ws.close(1011, "crash")

    with peer(handler) as url, pytest.raises(client.ConnectionLostError) as info:
        client.restore(url, b"\xff", 1, 1, "gray8")
    assert "python -m server" in str(info.value)

    async def go():
        async with client.AsyncClient(url2) as c:
            await c.restore(b"\xff", 1, 1, "gray8")

    with peer(handler) as url2, pytest.raises(client.ConnectionLostError):
        asyncio.run(go())


def test_async_cancel_event_and_task_cancel_send_cancel():
    cancels = []

    def handler(ws):
        ws.recv()
        ws.send(WELCOME)
        for raw in ws:
            msg = protocol.decode(raw)
            if isinstance(msg, protocol.Cancel):
                cancels.append(msg.id)
                ws.send(protocol.encode(protocol.Error(code="cancelled", message="cancelled", id=msg.id)))

    async def go(url):
        async with client.AsyncClient(url) as c:
            ev = asyncio.Event()
            task = asyncio.create_task(c.restore(b"\xff", 1, 1, "gray8", cancel=ev, request_id="ev"))
            await asyncio.sleep(0.1)
            ev.set()
            with pytest.raises(client.RequestCancelledError):
                await task
            task = asyncio.create_task(c.restore(b"\xff", 1, 1, "gray8", request_id="task"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.2)

    with peer(handler) as url:
        asyncio.run(go(url))
    assert cancels == ["ev", "task"]
