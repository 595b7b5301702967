"""Unit tests of the Krita plug-in's logic, without Krita: pixel layouts, regions, names, settings,
the restore path over an in-memory editor, error wording and the packaged zip.

The Krita adapter, the dialog and the action are covered by ``test_krita_e2e.py`` in real Krita.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from krita_plugin.lineart_restore import pixels
from krita_plugin.lineart_restore.connection import _info, options_for, plugin_error
from krita_plugin.lineart_restore.editor import LayerKind, SelectionInfo
from krita_plugin.lineart_restore.errors import PluginError
from krita_plugin.lineart_restore.geometry import (
    Rect,
    context_rect,
    mask_name,
    restored_name,
    target_rect,
    unique_name,
)
from krita_plugin.lineart_restore.restore import ServerAnswer, prepare, restore_layer, run_on_server
from krita_plugin.lineart_restore.settings import MemoryBackend, Settings, SettingsStore, normalize_server
from server import client as lrclient
from server import protocol
from tests.krita.memory_editor import MemoryDocument, MemoryLayer

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------------
# pixel layouts


def test_bgra8_to_rgba8_swaps_red_and_blue():
    krita = bytes([10, 20, 30, 255, 1, 2, 3, 4])  # B, G, R, A per pixel
    wire, fmt = pixels.krita_to_wire(krita, "RGBA", "U8", 2, 1, {"rgba8"})
    assert fmt == "rgba8"
    assert wire == bytes([30, 20, 10, 255, 3, 2, 1, 4])
    back, model, depth = pixels.wire_to_krita(wire, fmt, 2, 1)
    assert (back, model, depth) == (krita, "RGBA", "U8")


def test_bgra8_is_sent_as_is_when_the_server_takes_it():
    krita = bytes(range(16))
    wire, fmt = pixels.krita_to_wire(krita, "RGBA", "U8", 2, 2, {"bgra8", "rgba8"})
    assert (wire, fmt) == (krita, "bgra8")
    assert pixels.wire_to_krita(wire, fmt, 2, 2) == (krita, "RGBA", "U8")


def test_bgra16_to_rgba16_little_endian_samples():
    b, g, r, a = 0x0102, 0x1234, 0xABCD, 0xFFFF
    krita = struct.pack("=4H", b, g, r, a)  # Krita: native order
    wire, fmt = pixels.krita_to_wire(krita, "RGBA", "U16", 1, 1, {"rgba16"})
    assert fmt == "rgba16"
    assert wire == struct.pack("<4H", r, g, b, a)
    assert pixels.wire_to_krita(wire, fmt, 1, 1) == (krita, "RGBA", "U16")


@pytest.mark.parametrize("model,depth,fmt", [("GRAYA", "U8", "graya8"), ("GRAYA", "U16", "graya16")])
def test_graya_keeps_its_layout(model, depth, fmt):
    krita = bytes(range(4 * pixels.bytes_per_pixel(fmt)))
    wire, got = pixels.krita_to_wire(krita, model, depth, 2, 2, {fmt})
    assert (wire, got) == (krita, fmt)
    assert pixels.wire_to_krita(wire, got, 2, 2) == (krita, model, depth)


def test_wire_formats_match_the_protocol():
    for name, (channels, size) in pixels.WIRE_FORMATS.items():
        info = protocol.FORMAT_INFO[protocol.PixelFormat(name)]
        assert (info.channels, info.sample_bytes, info.alpha) == (channels, size, True)
        assert info.order == name.rstrip("0123456789")


def test_conversion_errors_are_clear():
    with pytest.raises(ValueError, match="needs 16 bytes, got 15"):
        pixels.krita_to_wire(bytes(15), "RGBA", "U8", 2, 2)
    with pytest.raises(KeyError):
        pixels.krita_to_wire(bytes(20), "CMYKA", "U8", 2, 2)
    with pytest.raises(ValueError, match="accepts neither"):
        pixels.krita_to_wire(bytes(16), "RGBA", "U8", 2, 2, {"gray8"})
    with pytest.raises(ValueError, match="unknown wire format"):
        pixels.wire_to_krita(bytes(4), "cmyk8", 1, 1)


def test_crop_takes_the_inner_rows():
    outer = Rect(10, 20, 4, 3)
    data = bytes(range(12 * 2))  # graya8, 2 B/px
    inner = Rect(11, 21, 2, 2)
    assert pixels.crop(data, 2, outer, inner) == bytes([10, 11, 12, 13, 18, 19, 20, 21])
    assert pixels.crop(data, 2, outer, outer) == data
    with pytest.raises(ValueError, match="not inside"):
        pixels.crop(data, 2, outer, Rect(9, 20, 2, 2))


def test_apply_coverage_u8_and_u16():
    data = bytes([50, 255, 60, 255, 70, 200])  # graya8: three pixels
    out = pixels.apply_coverage(data, "graya8", bytes([255, 0, 128]))
    assert out == bytes([50, 255, 60, 0, 70, (200 * 128 + 127) // 255])
    assert pixels.apply_coverage(data, "graya8", bytes([255] * 3)) == data
    d16 = struct.pack("=4H", 100, 65535, 200, 40000)
    out16 = struct.unpack("=4H", pixels.apply_coverage(d16, "graya16", bytes([0, 51])))
    assert out16 == (100, 0, 200, (40000 * 51 + 127) // 255)
    with pytest.raises(ValueError, match="coverage has 2 pixels"):
        pixels.apply_coverage(data, "graya8", bytes(2))


def test_transparency_and_mask_layer():
    assert pixels.is_transparent(bytes([255, 0, 0, 0]), "graya8")
    assert not pixels.is_transparent(bytes([255, 0, 0, 1]), "graya8")
    # 16-bit alpha 0x0100 has a zero low byte but is not transparent
    assert not pixels.is_transparent(struct.pack("<2H", 0, 0x0100), "graya16")
    assert pixels.mask_to_graya8(bytes([0, 255, 7])) == bytes([0, 0, 0, 255, 0, 255])


# --------------------------------------------------------------------------------------------------
# regions and names


def test_target_is_clipped_to_canvas_and_selection():
    canvas = Rect(0, 0, 100, 80)
    assert target_rect(Rect(-10, -5, 50, 200), canvas) == Rect(0, 0, 40, 80)
    assert target_rect(Rect(0, 0, 100, 80), canvas, Rect(90, 70, 30, 30)) == Rect(90, 70, 10, 10)
    assert target_rect(Rect(200, 0, 10, 10), canvas).empty
    assert target_rect(Rect(0, 0, 0, 0), canvas).empty


def test_context_snaps_to_the_jpeg_grid_and_stays_inside():
    limit = Rect(0, 0, 100, 80)
    ctx = context_rect(Rect(37, 45, 5, 3), limit)
    assert ctx.contains(Rect(37, 45, 5, 3))
    assert (ctx.x % 8, ctx.y % 8) == (0, 0) and ctx.right % 8 == 0 and ctx.bottom % 8 == 0
    assert ctx == Rect(16, 24, 48, 40)
    assert context_rect(Rect(0, 0, 100, 80), limit) == limit
    assert context_rect(Rect(95, 75, 5, 5), limit) == Rect(72, 56, 28, 24)


def test_layer_names():
    assert restored_name("Ink") == "Ink restored"
    assert mask_name("Ink") == "Ink line mask"
    assert restored_name("  ") == "Layer restored"
    assert unique_name("Ink restored", ["Ink"]) == "Ink restored"
    assert unique_name("Ink restored", ["Ink restored", "Ink restored 2"]) == "Ink restored 3"


def test_layer_kinds_from_krita_types():
    assert LayerKind.from_krita("paintlayer") is LayerKind.PAINT
    assert LayerKind.from_krita("filelayer") is LayerKind.FILE
    assert LayerKind.from_krita("transparencymask") is LayerKind.MASK
    assert LayerKind.from_krita("somethingnew") is LayerKind.OTHER


# --------------------------------------------------------------------------------------------------
# settings


def test_settings_round_trip_through_the_store():
    backend = MemoryBackend()
    store = SettingsStore(backend)
    assert store.load() == Settings().check()
    chosen = Settings(
        server="ws://127.0.0.1:9001",
        model="fbcnn",
        mask_method="otsu_d",
        threshold=False,
        theta=240,
        background="transparent",
        add_mask_layer=True,
        ensemble=4,
    )
    store.save(chosen)
    assert all(isinstance(v, str) for v in backend.values.values())
    assert SettingsStore(backend).load() == chosen


def test_bad_stored_values_fall_back_field_by_field():
    backend = MemoryBackend(
        {
            "theta": "300",
            "threshold": "maybe",
            "background": "pink",
            "server": "127.0.0.1:9100",
            "mask_method": "agt",
            "ensemble": "3",
        }
    )
    s = SettingsStore(backend).load()
    assert s.theta == Settings.theta and s.threshold is True and s.background == "white"
    assert s.ensemble == 1
    assert s.server == "ws://127.0.0.1:9100" and s.mask_method == "agt"


@pytest.mark.parametrize(
    "text,url",
    [
        ("localhost", "ws://localhost:8765"),
        ("127.0.0.1:9000", "ws://127.0.0.1:9000"),
        (" WS://host:1/path ", "ws://host:1/path"),
    ],
)
def test_server_address_forms(text, url):
    assert normalize_server(text) == url


@pytest.mark.parametrize("text,match", [("", "empty"), ("http://x:1", "ws://"), ("x:99999", "port"), (":80", "host")])
def test_bad_server_addresses(text, match):
    with pytest.raises(ValueError, match=match):
        normalize_server(text)


def test_options_are_valid_protocol_options():
    s = Settings(mask_method="otsu", threshold=False, theta=200, background="transparent", add_mask_layer=True)
    opts = protocol.parse_options(options_for(s))
    assert (opts.mask, opts.threshold, opts.theta, opts.background, opts.return_mask, opts.model) == (
        protocol.MaskMethod.OTSU,
        False,
        200,
        protocol.Background.TRANSPARENT,
        True,
        None,
    )
    assert protocol.parse_options(options_for(Settings(model="m1"))).model == "m1"
    assert "ensemble" not in options_for(Settings())  # a plain run is understood by older servers
    assert protocol.parse_options(options_for(Settings(ensemble=4))).ensemble == 4


@pytest.mark.parametrize("value", [3, 0, True, "4"])
def test_bad_ensemble_sizes_are_refused(value):
    with pytest.raises(ValueError, match="passes"):
        Settings(ensemble=value).check()


def test_server_info_reads_the_ensemble_sizes_from_the_welcome():
    def welcome(options):
        return SimpleNamespace(options=options, models=["m"], device="cpu", server_version="1", formats=[])

    schema = protocol.options_schema()
    assert _info("ws://h:1", welcome(schema)).ensemble_sizes == [1, 2, 4, 8]
    older = {k: v for k, v in schema.items() if k != "ensemble"}
    assert _info("ws://h:1", welcome(older)).ensemble_sizes == [1]


# --------------------------------------------------------------------------------------------------
# the restore path over the in-memory editor


def _gray_layer(name, bounds, values, alpha=255):
    data = bytearray()
    for v in values:
        data += bytes([v, alpha])
    return MemoryLayer(name, bounds, "GRAYA", "U8", bytes(data))


def _inverting_call(log):
    """Stand-in network step with a result we can predict: inverts gray (alpha kept), and
    reports lines where the input is darker than 128."""

    def call(data, fmt, width, height, settings):
        log.append((fmt, width, height, settings))
        ch, size = pixels.WIRE_FORMATS[fmt]
        assert size == 1
        out = bytearray(data)
        for c in range(ch - 1):
            out[c::ch] = bytes(255 - v for v in data[c::ch])
        gray = data[1::ch] if ch == 4 else data[0::ch]
        mask = bytes(255 if v < 128 else 0 for v in gray)
        return ServerAnswer(format=fmt, data=bytes(out), mask=mask)

    return call


def test_restore_whole_layer_adds_layers_and_keeps_the_source():
    w, h = 20, 12
    values = [(x * 13 + y * 7) % 256 for y in range(h) for x in range(w)]
    src = _gray_layer("Ink", Rect(0, 0, w, h), values)
    before = bytes(src.data)
    doc = MemoryDocument(w, h, [src])
    log = []
    added, outcome = restore_layer(doc, src, Settings(add_mask_layer=True), _inverting_call(log))
    assert [l.name for l in doc.layers] == ["Ink", "Ink restored", "Ink line mask"]
    assert bytes(src.data) == before
    restored, mask = added
    assert restored.bounds == Rect(0, 0, w, h) and (restored.color_model, restored.color_depth) == ("GRAYA", "U8")
    assert list(restored.data[0::2]) == [255 - v for v in values]
    assert set(restored.data[1::2]) == {255}
    assert not mask.visible
    assert list(mask.data[1::2]) == [255 if v < 128 else 0 for v in values]
    assert log[0][:3] == ("graya8", w, h)
    assert doc.active is restored  # never the hidden mask layer


def test_the_servers_notes_are_shown_once_each():
    """Repeated or blank notes go; the rest are kept in order."""

    def call(d, f, w, h, s):
        return ServerAnswer(format=f, data=d, notes=["JPEG quality about 30", " ", "JPEG quality about 30", "b"])

    layer = _gray_layer("Ink", Rect(0, 0, 4, 4), [10] * 16)
    _, outcome = restore_layer(MemoryDocument(4, 4, [layer]), layer, Settings(), call)
    assert outcome.notes == ["JPEG quality about 30", "b"]


def test_the_documents_jpeg_file_sends_its_table(tmp_path):
    """The action's worker path (``job_task``): the document's file reaches the client, which
    sends a JPEG's quantization table to a server that takes it; a PNG document sends none."""
    import threading

    from PIL import Image

    from krita_plugin.lineart_restore.connection import job_task
    from tests.test_client import peer

    table = [(11 * i) % 40 + 1 for i in range(64)]
    jpeg, png = tmp_path / "ink.jpg", tmp_path / "ink.png"
    Image.new("L", (16, 8), 255).save(jpeg, "JPEG", qtables=[table])
    Image.new("L", (16, 8), 255).save(png)
    got = []

    def echo(ws):  # a peer server that records the options and sends the pixels back
        ws.recv()
        ws.send(
            protocol.encode(
                protocol.Welcome(
                    server_version="test",
                    device="cpu",
                    models=["default"],
                    formats=["graya8"],
                    options=protocol.options_schema(),
                    limits=protocol.Limits(),
                )
            )
        )
        for raw in ws:
            msg = protocol.decode(raw)
            got.append(msg.options)
            ws.send(
                protocol.encode(
                    protocol.Result(id=msg.id, width=msg.width, height=msg.height, format=msg.format, data=msg.data)
                )
            )

    with peer(echo) as url:
        for path in (jpeg, png):
            src = _gray_layer("Ink", Rect(0, 0, 16, 8), [200] * 128)
            doc = MemoryDocument(16, 8, [src], file_path=str(path))
            job = prepare(doc, src, Settings(server=url))
            assert job.source_file == str(path)
            job_task(job)(threading.Event(), lambda f, t: None)
    assert [o.jpeg_table for o in got] == [table, None]


def test_restore_selection_only_writes_the_selected_pixels():
    w, h = 40, 32
    src = _gray_layer("Ink", Rect(0, 0, w, h), [100] * (w * h))
    sel_box = Rect(17, 9, 6, 4)
    coverage = bytes([255] * 12 + [128] * 6 + [0] * 6)
    doc = MemoryDocument(w, h, [src], SelectionInfo(sel_box, coverage))
    log = []
    (restored,), _ = restore_layer(doc, src, Settings(), _inverting_call(log))
    assert restored.bounds == sel_box
    assert list(restored.data[0::2]) == [155] * 24
    assert list(restored.data[1::2]) == [255] * 12 + [128] * 6 + [0] * 6
    fmt, cw, ch, _ = log[0]
    assert (cw, ch) == (40, 32)  # context: grown by 16 and snapped to the 8 grid, clipped


def test_restore_rgba_layer_partly_off_canvas():
    bounds = Rect(-2, -1, 6, 4)  # sticks out left and top of a 5 x 3 canvas
    data = bytearray()
    for i in range(bounds.area):
        data += bytes([i, 2 * i, 3 * i, 255])  # B, G, R, A
    src = MemoryLayer("Photo", bounds, "RGBA", "U8", bytes(data))
    doc = MemoryDocument(5, 3, [src])
    log = []
    (restored,), _ = restore_layer(doc, src, Settings(), _inverting_call(log), accepted={"rgba8"})
    assert log[0][:3] == ("rgba8", 4, 3)
    assert restored.bounds == Rect(0, 0, 4, 3)
    px = restored.data[0:4]  # canvas (0,0) = layer pixel (2,1) = index 8
    assert list(px) == [255 - 8, 255 - 16, 255 - 24, 255]


@pytest.mark.parametrize(
    "kind,word", [(LayerKind.GROUP, "group"), (LayerKind.VECTOR, "vector"), (LayerKind.FILE, "file layer")]
)
def test_wrong_layer_types_are_refused(kind, word):
    layer = MemoryLayer("Stuff", Rect(0, 0, 4, 4), kind=kind)
    doc = MemoryDocument(4, 4, [layer])
    with pytest.raises(PluginError, match=word) as e:
        prepare(doc, layer, Settings())
    assert e.value.code == "wrong_layer_type"
    assert layer.reads == 0


def test_empty_layer_and_empty_selection_are_refused():
    layer = _gray_layer("Blank", Rect(0, 0, 8, 8), [255] * 64, alpha=0)
    doc = MemoryDocument(8, 8, [layer])
    with pytest.raises(PluginError, match="no visible pixels") as e:
        prepare(doc, layer, Settings())
    assert e.value.code == "empty_layer"
    nothing = MemoryLayer("Nothing", Rect(0, 0, 0, 0))
    with pytest.raises(PluginError, match="is empty"):
        prepare(MemoryDocument(8, 8, [nothing]), nothing, Settings())
    ink = _gray_layer("Ink", Rect(0, 0, 4, 4), [0] * 16)
    sel = SelectionInfo(Rect(6, 6, 2, 2), bytes([255] * 4))
    with pytest.raises(PluginError, match="selection does not touch"):
        prepare(MemoryDocument(8, 8, [ink], sel), ink, Settings())


def test_unconvertible_colour_space_is_refused_clearly():
    layer = MemoryLayer("Print", Rect(0, 0, 2, 2), "CMYKA", "U8")
    with pytest.raises(PluginError, match="CMYKA U8") as e:
        prepare(MemoryDocument(2, 2, [layer]), layer, Settings())
    assert e.value.code == "unsupported_color"


def test_names_do_not_collide_with_earlier_runs():
    src = _gray_layer("Ink", Rect(0, 0, 2, 2), [0] * 4)
    doc = MemoryDocument(2, 2, [src])
    restore_layer(doc, src, Settings(), _inverting_call([]))
    restore_layer(doc, src, Settings(), _inverting_call([]))
    assert [l.name for l in doc.layers] == ["Ink", "Ink restored 2", "Ink restored"]


def test_a_wrong_sized_answer_is_a_server_error():
    src = _gray_layer("Ink", Rect(0, 0, 4, 4), [0] * 16)
    job = prepare(MemoryDocument(4, 4, [src]), src, Settings())
    with pytest.raises(PluginError, match="does not fit") as e:
        run_on_server(job, lambda d, f, w, h, s: ServerAnswer(format=f, data=d[:-2]))
    assert e.value.code == "server_error"


# --------------------------------------------------------------------------------------------------
# error wording (real client errors)


def test_server_down_message_gives_the_start_command():
    with pytest.raises(lrclient.ServerUnavailableError) as e:
        lrclient.Client("ws://127.0.0.1:9", open_timeout=2).connect()
    err = plugin_error(e.value, "ws://127.0.0.1:9")
    assert err.code == "server_down"
    assert "python -m server --port 9" in err.message  # no launch.json in a checkout: the plain command
    assert "not running" in err.message and "Start server" in err.message


def test_server_down_message_names_the_recorded_python_and_port(tmp_path, monkeypatch):
    from krita_plugin.lineart_restore import connection
    from plugin_common.launcher import LaunchConfig

    config = LaunchConfig(python="/opt/lr env/bin/python", port=9100, args=("--fast",), cwd="/src/lr")
    monkeypatch.setattr(connection, "launch_config", lambda python="": config.with_python(python))
    err = plugin_error(lrclient.ServerUnavailableError("down"), "ws://127.0.0.1:9200")
    assert "cd /src/lr && '/opt/lr env/bin/python' -m server --port 9200 --fast" in err.message
    err = connection.plugin_error(lrclient.ServerUnavailableError("down"), "ws://127.0.0.1:9200", "/usr/bin/python3")
    assert "/usr/bin/python3 -m server --port 9200" in err.message


def test_server_error_codes_get_artist_words():
    err = plugin_error(lrclient.ServerError("image is 9000x9000", "too_large", "r1"), "ws://x:1")
    assert err.code == "too_large" and "Select a smaller area" in err.message
    err = plugin_error(lrclient.ServerError("weird", "brand_new_code"), "ws://x:1")
    assert "weird" in err.message


# --------------------------------------------------------------------------------------------------
# packaging


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    from krita_plugin.package import build_zip

    return build_zip(tmp_path_factory.mktemp("dist"))


def test_zip_layout(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as zf:
        names = set(zf.namelist())
    assert "lineart_restore.desktop" in names
    assert "lineart_restore/" in names  # Krita's importer needs the folder entry
    for f in (
        "__init__.py",
        "restore.py",
        "vendor/lrclient/protocol.py",
        "vendor/lrclient/client.py",
        "vendor/msgpack/fallback.py",
        "vendor/websockets/sync/client.py",
        "vendor/LICENSES/websockets-LICENSE",
    ):
        assert f"lineart_restore/{f}" in names, f
    assert not [n for n in names if n.endswith((".so", ".pyd", ".c", ".pyc"))]


def test_zip_imports_with_pure_python_dependencies(plugin_zip, tmp_path):
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(tmp_path)
    # -S: no site-packages, so only the bundled websockets/msgpack can be found.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from lineart_restore.connection import load_client;"
        "client, protocol = load_client();"
        "import msgpack, websockets.utils;"
        "assert msgpack.Unpacker.__module__ == 'msgpack.fallback', msgpack.Unpacker.__module__;"
        "assert websockets.__file__.startswith(sys.argv[1]), websockets.__file__;"
        "m = protocol.decode(protocol.encode(protocol.Hello(client='t')));"
        "print(type(m).__name__, client.Client.__module__)"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Hello", "lineart_restore.vendor.lrclient.client"]


def test_package_command_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "krita_plugin.package", "--output", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "lineart_restore-0.1.0.zip").is_file()


def test_an_older_server_offers_standard_only_and_a_saved_quality_gets_a_fix(older_server_url):
    """A server from before the self-ensemble: Check server offers one pass, a plain run works and a
    Quality remembered from a newer server fails with what to change."""
    from krita_plugin.lineart_restore.connection import ServerSession, query_server

    assert query_server(older_server_url, open_timeout=30).ensemble_sizes == [1]
    w, h = 32, 24
    data = bytes([255] * (w * 6) + [0] * w + [255] * (w * (h - 7)))
    with ServerSession(older_server_url, open_timeout=30) as session:
        session.connect()
        answer = session(data, "gray8", w, h, Settings(server=older_server_url))
        assert answer.format == "gray8" and len(answer.data) == w * h
        with pytest.raises(PluginError) as e:
            session(data, "gray8", w, h, Settings(server=older_server_url, ensemble=2))
    # detected from the welcome (its option list), before anything is sent
    assert e.value.code == "no_ensemble"
    assert "one pass only" in e.value.message and "Set Quality to Standard" in e.value.message


def test_restore_starts_the_server_when_none_answers(tmp_path, monkeypatch):
    """The action's worker task with "start the server when it is not running": nothing answers,
    so it starts ``python -m server`` with the recorded Python, reports the model loading, and
    restores; the server keeps running afterwards."""
    import socket
    import threading

    from krita_plugin.lineart_restore import connection
    from plugin_common import launcher
    from plugin_common.launcher import LaunchConfig
    from tests.subprocess_server import slim_server_args, stop_pid

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(launcher.STATE_ENV, str(tmp_path / "state"))
    config = LaunchConfig(python=sys.executable, port=port, args=tuple(slim_server_args(tmp_path)), cwd=str(REPO))
    monkeypatch.setattr(connection, "launch_config", lambda python="": config.with_python(python))
    url = f"ws://127.0.0.1:{port}"
    src = _gray_layer("Ink", Rect(0, 0, 24, 16), [(x * 9) % 256 for x in range(24 * 16)])
    job = prepare(MemoryDocument(24, 16, [src]), src, Settings(server=url))
    progress: list[tuple[float, str]] = []
    try:
        outcome = connection.job_task(job, start=True)(threading.Event(), lambda f, t: progress.append((f, t)))
        assert len(outcome.restored) == 24 * 16 * 2
        texts = [t for _, t in progress]
        assert any("loading models" in t for t in texts) and texts[-1] == "Received the result."
        assert launcher.probe(url) == "server"
    finally:
        stop_pid(launcher.pid_path(port))
