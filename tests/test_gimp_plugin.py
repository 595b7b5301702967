"""Unit tests of the GIMP 3 plug-in's GIMP-free logic and of its installer.

The GIMP entry file itself runs only inside GIMP; ``tests/test_gimp_e2e.py`` drives it there.
Here the job runs against an in-memory editor (byte buffers) and the project's real protocol and
client; the success path uses a real server started on 127.0.0.1 (see ``gimp_server`` below).
"""

from __future__ import annotations

import ast
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gimp_plugin import install as installer
from server import protocol

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "gimp_plugin" / "lineart_restore"
sys.path.insert(0, str(PLUGIN_DIR))

from lineart_gimp import formats, job, settings  # noqa: E402
from lineart_gimp.editor import Editor, SourceInfo  # noqa: E402
from lineart_gimp.settings import Settings, SettingsError  # noqa: E402

#: Every Gimp.Precision value name in GIMP 3.0 (read from the Gimp-3.0 typelib).
GIMP_PRECISIONS = [
    f"GIMP_PRECISION_{c}_{t}"
    for c in ("U8", "U16", "U32", "HALF", "FLOAT", "DOUBLE")
    for t in ("LINEAR", "NON_LINEAR", "PERCEPTUAL")
]


# --------------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize("name", GIMP_PRECISIONS)
def test_every_gimp_precision_has_a_component(name):
    comp = formats.component_of_precision(name)
    assert comp == name.split("_")[2].lower()
    # nicks ("u16-non-linear") work too
    nick = name.replace("GIMP_PRECISION_", "").lower().replace("_", "-")
    assert formats.component_of_precision(nick) == comp


def test_unknown_precision_is_rejected():
    with pytest.raises(ValueError, match="unknown GIMP precision"):
        formats.component_of_precision("GIMP_PRECISION_U12_LINEAR")


@pytest.mark.parametrize(
    "base, alpha, precision, babl, wire",
    [
        ("gray", False, "GIMP_PRECISION_U8_NON_LINEAR", "Y' u8", "gray8"),
        ("GRAY", True, "GIMP_PRECISION_U8_LINEAR", "Y'A u8", "graya8"),
        ("rgb", False, "GIMP_PRECISION_U8_PERCEPTUAL", "R'G'B' u8", "rgb8"),
        ("rgb", True, "GIMP_PRECISION_U8_NON_LINEAR", "R'G'B'A u8", "rgba8"),
        ("gray", False, "GIMP_PRECISION_U16_LINEAR", "Y' u16", "gray16"),
        ("gray", True, "GIMP_PRECISION_HALF_NON_LINEAR", "Y'A u16", "graya16"),
        ("rgb", False, "GIMP_PRECISION_U32_LINEAR", "R'G'B' u16", "rgb16"),
        ("rgb", True, "GIMP_PRECISION_FLOAT_LINEAR", "R'G'B'A u16", "rgba16"),
        ("rgb", True, "GIMP_PRECISION_DOUBLE_PERCEPTUAL", "R'G'B'A u16", "rgba16"),
    ],
)
def test_read_layout_table(base, alpha, precision, babl, wire):
    lay = formats.read_layout(base, alpha, precision)
    assert (lay.babl, lay.wire, lay.alpha) == (babl, wire, alpha)


def test_indexed_images_are_refused_with_a_fix():
    with pytest.raises(ValueError, match="Image > Mode"):
        formats.read_layout("indexed", False, "GIMP_PRECISION_U8_NON_LINEAR")


@pytest.mark.parametrize("wire", sorted(formats.LAYOUTS))
def test_layouts_agree_with_the_protocol(wire):
    lay = formats.LAYOUTS[wire]
    info = protocol.FORMAT_INFO[protocol.PixelFormat(wire)]
    assert (lay.channels, lay.sample_bytes, lay.alpha) == (info.channels, info.sample_bytes, info.alpha)
    assert lay.size(5, 3) == protocol.expected_size(wire, 5, 3)
    assert formats.layout_of_wire(wire) is lay
    # a transparent background adds alpha in a format we can also write
    assert formats.layout_of_wire(str(protocol.with_alpha(wire))).alpha
    assert (
        formats.layer_type_name(lay)
        == ("GRAY" if lay.base == "gray" else "RGB") + ("A" if lay.alpha else "") + "_IMAGE"
    )


@pytest.mark.parametrize("wire", ["bgra8", "png", "cmyk8"])
def test_layout_of_unwritable_formats(wire):
    with pytest.raises(ValueError, match="cannot write"):
        formats.layout_of_wire(wire)


def test_byte_order():
    lay16 = formats.LAYOUTS["gray16"]
    host = (0x1234).to_bytes(2, "big") + (0xABCD).to_bytes(2, "big")
    assert formats.to_wire_order(host, lay16, "big") == bytes([0x34, 0x12, 0xCD, 0xAB])
    assert formats.from_wire_order(formats.to_wire_order(host, lay16, "big"), lay16, "big") == host
    assert formats.to_wire_order(host, lay16, "little") == host
    assert formats.to_wire_order(host, formats.LAYOUTS["gray8"], "big") == host


# --------------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize(
    "text, url",
    [
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765"),
        ("  localhost:9000 ", "ws://localhost:9000"),
        ("example.org", "ws://example.org:8765"),
        ("http://10.0.0.2:80/x", "ws://10.0.0.2:80/x"),
        ("wss://host", "wss://host:443"),
        ("[::1]:8765", "ws://[::1]:8765"),
    ],
)
def test_normalize_server(text, url):
    assert settings.normalize_server(text) == url


@pytest.mark.parametrize(
    "text, match", [("", "empty"), ("ftp://h", "scheme"), ("ws://h:99999", "port"), ("ws://:1", "no host")]
)
def test_normalize_server_errors(text, match):
    with pytest.raises(SettingsError, match=match):
        settings.normalize_server(text)


def test_choices_match_the_protocol_enums():
    specs = {a.name: a for a in settings.ARGUMENTS}
    assert [n for n, _ in specs["mask-method"].choices] == [str(m) for m in protocol.MaskMethod]
    assert [n for n, _ in specs["background"].choices] == [str(b) for b in protocol.Background]
    assert specs["threshold"].default == protocol.Options.theta
    passes = [settings.QUALITY_PASSES[n] for n, _ in specs["quality"].choices]
    assert passes == list(protocol.ENSEMBLE_SIZES) and passes[0] == protocol.Options.ensemble
    for spec in settings.ARGUMENTS:  # GParamSpec names: lower case, digits and dashes
        assert spec.name.replace("-", "").isalnum() and spec.name == spec.name.lower()


def test_settings_defaults_make_valid_protocol_options():
    s = Settings.from_arguments({})
    assert s == Settings()
    opts = protocol.Options(**s.options())
    opts.check()
    assert (opts.mask, opts.threshold, opts.theta, opts.background, opts.return_mask) == (
        "learnt",
        True,
        251,
        "white",
        False,
    )


def test_settings_from_arguments():
    s = Settings.from_arguments(
        {
            "server": "127.0.0.1:1234",
            "mask-method": "otsu_d",
            "threshold": 255,
            "background": "transparent",
            "mask-layer": True,
        }
    )
    assert s == Settings("ws://127.0.0.1:1234", "otsu_d", 255, "transparent", True)
    o = s.options()
    assert o["threshold"] is False and o["return_mask"] is True  # 255 turns the snap off
    assert "ensemble" not in o  # a one-pass run is understood by servers older than the option
    best = Settings.from_arguments({"quality": "x4"}).options()
    assert protocol.parse_options(best).ensemble == 4


@pytest.mark.parametrize(
    "values, match",
    [
        ({"mask-method": "magic"}, "mask-method must be one of"),
        ({"background": "black"}, "background must be one of"),
        ({"threshold": 256}, r"threshold must be in 0\.\.255"),
        ({"threshold": 2.5}, "threshold must be an integer"),
        ({"thresold": 3}, "unknown argument"),
        ({"quality": "x3"}, "quality must be one of"),
        ({"server": "gopher://x"}, "scheme"),
    ],
)
def test_settings_errors(values, match):
    with pytest.raises(SettingsError, match=match) as e:
        Settings.from_arguments(values)
    assert e.value.code == "invalid_option"


# --------------------------------------------------------------------------------------------------
# job, with an in-memory editor


class BufferEditor(Editor):
    """An editor whose layers are byte strings; records every call in ``calls``."""

    def __init__(self, src: SourceInfo | None, pixels: bytes | None = None) -> None:
        self.src = src
        self.pixels = pixels
        self.layers: list[tuple[str, formats.PixelLayout, bytes, bool]] = []
        self.calls: list[str] = []
        self.progress_values: list[float] = []
        self.progress_texts: list[str | None] = []

    def source(self):
        return self.src

    def read_pixels(self, layout):
        self.calls.append(f"read {layout.babl}")
        return self.pixels

    def add_layer(self, name, layout, data, visible=True):
        self.calls.append(f"add {name}")
        self.layers.append((name, layout, bytes(data), visible))

    def select_layer(self, name):
        self.calls.append(f"select {name}")

    def begin_undo(self):
        self.calls.append("begin_undo")

    def end_undo(self):
        self.calls.append("end_undo")

    def progress_start(self, text):
        self.calls.append("progress_start")

    def progress(self, fraction, text=None):
        self.progress_values.append(fraction)
        self.progress_texts.append(text)

    def progress_end(self):
        self.calls.append("progress_end")

    def flush(self):
        self.calls.append("flush")


def _src(kind="layer", base="gray", alpha=False, precision="GIMP_PRECISION_U8_NON_LINEAR", w=8, h=6):
    return SourceInfo("Background", kind, base, precision, alpha, w, h)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "src, code, match",
    [
        (None, "no_drawable", "exactly one layer"),
        (_src(kind="group"), "unsuitable_drawable", "layer group"),
        (_src(kind="channel"), "unsuitable_drawable", "a channel"),
        (_src(kind="layer_mask"), "unsuitable_drawable", "a layer mask"),
        (_src(base="indexed"), "unsuitable_drawable", "indexed"),
        (_src(w=0), "unsuitable_drawable", "empty"),
    ],
)
def test_unsuitable_drawables_change_nothing(src, code, match):
    editor = BufferEditor(src, b"")
    with pytest.raises(job.PluginError, match=match) as e:
        job.run_restore(editor, Settings())
    assert e.value.code == code
    assert editor.calls == [] and editor.layers == []


def test_server_down_names_the_start_command():
    """A real client call to a port where nothing listens."""
    editor = BufferEditor(_src(), bytes(range(48)))
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    with pytest.raises(job.PluginError) as e:
        job.run_restore(editor, Settings(server=url, start_server=False))
    assert e.value.code == "server_down"
    assert f"python -m server --port {port}" in e.value.message and url in e.value.message
    assert editor.layers == []
    assert "begin_undo" not in editor.calls and editor.calls[-1] == "progress_end"


def test_starting_the_server_without_a_recorded_python_says_what_to_do():
    """In a checkout there is no launch.json: the start is refused at once, with the command."""
    editor = BufferEditor(_src(), bytes(range(48)))
    port = _free_port()
    with pytest.raises(job.PluginError) as e:
        job.run_restore(editor, Settings(server=f"ws://127.0.0.1:{port}"))
    assert e.value.code == "no_python"
    assert f"python -m server --port {port}" in e.value.message and "gimp_plugin.install" in e.value.message
    assert editor.layers == [] and editor.calls[-1] == "progress_end"


def test_short_read_is_reported():
    editor = BufferEditor(_src(), b"\xff" * 47)
    with pytest.raises(job.PluginError, match="gave 47 bytes, expected 48") as e:
        job.run_restore(editor, Settings(), restore=lambda *a, **k: pytest.fail("must not send"))
    assert e.value.code == "bad_read"


def _result(width, height, fmt, data, mask=None):
    return protocol.Result(id="r1", width=width, height=height, format=protocol.PixelFormat(fmt), data=data, mask=mask)


@pytest.mark.parametrize(
    "result, match",
    [
        (_result(4, 6, "gray8", b"\0" * 24), "4x6 pixels for a 8x6 layer"),
        (_result(8, 6, "rgb8", b"\0" * 144), "answered rgb8 to a gray8 request"),
        (_result(8, 6, "gray16", b"\0" * 96), "answered gray16 to a gray8 request"),
        (_result(8, 6, "bgra8", b"\0" * 192), "cannot write"),
    ],
)
def test_a_result_that_does_not_fit_is_refused(result, match):
    """A misbehaving server (stood in for by a function returning real protocol messages)."""
    editor = BufferEditor(_src(), b"\xff" * 48)
    with pytest.raises(job.PluginError, match=match) as e:
        job.run_restore(editor, Settings(), restore=lambda *a, **k: result)
    assert e.value.code == "bad_result"
    assert editor.layers == [] and "begin_undo" not in editor.calls


def test_load_client_prefers_the_bundled_copy(tmp_path, monkeypatch):
    assert job.load_client().__name__ in ("lrclient.client", "server.client")
    installer.install(tmp_path / "prof", say=lambda s: None)
    monkeypatch.syspath_prepend(str(tmp_path / "prof" / "plug-ins" / "lineart_restore"))
    for name in [m for m in sys.modules if m == "lrclient" or m.startswith("lrclient.")]:
        monkeypatch.delitem(sys.modules, name)
    client = job.load_client()
    assert client.__name__ == "lrclient.client"
    assert Path(client.__file__).is_relative_to(tmp_path)


# --------------------------------------------------------------------------------------------------
# installer


@pytest.mark.parametrize(
    "platform, env, expected",
    [
        ("linux", {}, "home/.config/GIMP/3.0"),
        ("linux", {"XDG_CONFIG_HOME": "/xdg"}, "/xdg/GIMP/3.0"),
        ("linux", {"GIMP3_DIRECTORY": "/custom"}, "/custom"),
        ("darwin", {}, "home/Library/Application Support/GIMP/3.0"),
        ("win32", {"APPDATA": "/appdata"}, "/appdata/GIMP/3.0"),
        ("win32", {}, "home/AppData/Roaming/GIMP/3.0"),
    ],
)
def test_default_gimp_dir(tmp_path, platform, env, expected):
    home = tmp_path / "home"
    got = installer.default_gimp_dir(platform, env, home)
    want = Path(expected) if expected.startswith("/") else tmp_path / expected
    assert got == want


def test_default_gimp_dir_prefers_newest_existing_and_flatpak(tmp_path):
    home = tmp_path / "home"
    flat = home / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    flat.mkdir(parents=True)
    assert installer.default_gimp_dir("linux", {}, home) == flat  # only the Flatpak profile exists
    for v in ("3.0", "3.2", "3.10"):
        (home / ".config/GIMP" / v).mkdir(parents=True)
    assert installer.default_gimp_dir("linux", {}, home) == home / ".config/GIMP/3.10"


def test_install_copies_a_self_contained_plugin(tmp_path):
    lines: list[str] = []
    dest = installer.install(tmp_path / "prof", say=lines.append)
    assert dest == tmp_path / "prof" / "plug-ins" / "lineart_restore"
    entry = dest / "lineart_restore.py"
    assert entry.stat().st_mode & stat.S_IXUSR
    for rel in (
        "lineart_gimp/job.py",
        "lrclient/protocol.py",
        "lrclient/client.py",
        "lrclient/__init__.py",
        "websockets/sync/client.py",
        "msgpack/fallback.py",
    ):
        assert (dest / rel).is_file(), rel
    assert (dest / "lrclient/protocol.py").read_bytes() == Path(protocol.__file__).read_bytes()
    assert list((dest / "LICENSES").iterdir())
    assert (dest / "lrclient/launcher.py").is_file() and (dest / "lrclient/errors.py").is_file()
    assert '"python": "' + sys.executable in (dest / "lrclient/launch.json").read_text()
    assert not (dest / "websockets" / "trio").exists()  # the same bundle as Krita's
    compiled = [p for p in dest.rglob("*") if p.suffix in (".so", ".pyd", ".pyc", ".c")]
    assert compiled == []
    text = "\n".join(lines)
    assert "bundle websockets" in text and "executable" in text and str(dest) in text
    # The bundled copies import without this environment's site-packages: -S drops them, -E
    # ignores PYTHONPATH, and the pure-Python msgpack fallback is what gets used.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import msgpack, websockets; from lrclient import client, protocol;"
        "from lineart_gimp import job; assert job.load_client() is client;"
        "assert msgpack.Packer.__module__ == 'msgpack.fallback', msgpack.Packer;"
        "print(client.__file__, websockets.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-E", "-c", code, str(dest)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert all(p.startswith(str(dest)) for p in out.stdout.split())


def test_install_replaces_and_dry_run_writes_nothing(tmp_path):
    dest = installer.install(tmp_path / "prof", say=lambda s: None)
    (dest / "stale.py").write_text("x")
    installer.install(tmp_path / "prof", say=lambda s: None)
    assert not (dest / "stale.py").exists()
    lines: list[str] = []
    installer.install(tmp_path / "other", dry_run=True, say=lines.append)
    assert not (tmp_path / "other").exists()
    assert any(line.startswith("would copy plug-in") for line in lines)


def test_install_command_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "gimp_plugin.install", "--gimp-dir", str(tmp_path / "g")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.returncode == 0, out.stderr
    assert "installed." in out.stdout
    assert (tmp_path / "g/plug-ins/lineart_restore/lineart_restore.py").is_file()


def test_entry_file_is_an_executable_gimp3_plugin():
    """Static checks of what GIMP needs to list the plug-in (GIMP itself checks it end to end)."""
    entry = PLUGIN_DIR / "lineart_restore.py"
    assert entry.read_text().startswith("#!/usr/bin/env python3\n")
    assert os.access(entry, os.X_OK)
    tree = ast.parse(entry.read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert {"Gimp", "Gegl", "run_restore", "ARGUMENTS"} <= names
    consts = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"Restore JPEG Line Art...", "<Image>/Filters/Enhance", "RGB*, GRAY*"} <= consts


# --------------------------------------------------------------------------------------------------
# the whole job against a real server (in this process, random-weight slim models)


def _slim_restorer(d: Path, seed: int):
    """A CPU Restorer of random-weight slim models saved in ``d``."""
    from core.pipeline import Restorer
    from tests.subprocess_server import save_slim_models

    return Restorer.from_files(*save_slim_models(d, seed), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    from server.app import serve_in_thread

    restorer = _slim_restorer(tmp_path_factory.mktemp("gimp-unit-models"), 5)
    with serve_in_thread(restorer, host="127.0.0.1") as srv:
        yield srv.url


def _drawing_bytes(channels: int, sample_bytes: int, w: int = 40, h: int = 24) -> bytes:
    """A white image with a dark horizontal and a gray vertical stroke, in a raw layout."""
    import numpy as np

    img = np.full((h, w), 255, np.uint8)
    img[8:10, 4:36] = 10
    img[3:21, 20:22] = 90
    if sample_bytes == 2:
        img = img.astype("<u2") * 257
    planes = [img] * min(channels, 3)
    if channels in (2, 4):
        planes.append(np.full_like(img, 255 if sample_bytes == 1 else 65535))
    return np.stack(planes, -1).tobytes()


@pytest.mark.parametrize(
    "base, alpha, precision, args, wire_out",
    [
        ("gray", False, "GIMP_PRECISION_U8_NON_LINEAR", {"mask-method": "otsu", "mask-layer": True}, "gray8"),
        ("rgb", True, "GIMP_PRECISION_U16_LINEAR", {"mask-method": "agt", "background": "transparent"}, "rgba16"),
        (
            "rgb",
            False,
            "GIMP_PRECISION_FLOAT_NON_LINEAR",
            {"mask-method": "learnt", "background": "transparent", "mask-layer": True},
            "rgba16",
        ),
    ],
)
def test_run_restore_adds_layers_in_one_undo_group(server_url, base, alpha, precision, args, wire_out):
    w, h = 40, 24
    src = _src(base=base, alpha=alpha, precision=precision, w=w, h=h)
    layout = job.check_source(src)
    pixels = _drawing_bytes(layout.channels, layout.sample_bytes, w, h)
    editor = BufferEditor(src, pixels)
    st = Settings.from_arguments({**args, "server": server_url})
    outcome = job.run_restore(editor, st, timeout=60)

    direct = job.load_client().restore(server_url, pixels, w, h, layout.wire, st.options())
    names = ["restored", "line mask"] if st.mask_layer else ["restored"]
    assert outcome.layers == names and [lay[0] for lay in editor.layers] == names
    assert editor.calls == [
        f"read {layout.babl}",
        "progress_start",
        "begin_undo",
        *[f"add {n}" for n in names],
        "select restored",
        "end_undo",
        "progress_end",
        "flush",
    ]
    name, res_layout, data, visible = editor.layers[0]
    assert res_layout.wire == wire_out == str(direct.format) and visible
    assert data == direct.data and data != pixels
    if st.mask_layer:
        _, mask_layout, mask, mask_visible = editor.layers[1]
        assert mask_layout.wire == "gray8" and mask == direct.mask and not mask_visible
    assert editor.progress_values and editor.progress_values[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in editor.progress_values)
    assert any(t and t.endswith("%") for t in editor.progress_texts)  # the server's fractions shown
    assert editor.pixels == pixels  # the source buffer is untouched
    assert outcome.format == layout.wire


def test_the_images_jpeg_file_table_reaches_the_server(server_url, tmp_path, monkeypatch):
    """An image opened from a JPEG of another encoder (a table no IJG quality gives): its table goes
    to the real server with the layer, whose result is made consistent with it."""
    from core import jpeg_consistency

    # These untrained test networks restore so badly that the check of docs/wild.md would skip
    # the projection; this test is about the table reaching it, so the check is taken out.
    monkeypatch.setattr(jpeg_consistency, "max_outside", lambda _grid: float("inf"))
    import dataclasses

    import numpy as np
    from PIL import Image

    table = [min(255, 3 + (i % 8) + 2 * (i // 8)) for i in range(64)]
    path = tmp_path / "scan.jpg"
    rng = np.random.default_rng(3)  # strokes and paper grain: enough texture for the check
    img = np.clip(250 + rng.normal(0, 6, (48, 64)), 0, 255)
    img[8:11, 4:60], img[3:45, 20:23], img[30:33, 10:50] = 10, 90, 40
    img = img.astype(np.uint8)
    Image.fromarray(img).save(path, "JPEG", qtables=[table])
    pixels = np.asarray(Image.open(path)).tobytes()
    src = _src(w=64, h=48)
    with_file = job.run_restore(
        BufferEditor(dataclasses.replace(src, file=str(path)), pixels), Settings(server=server_url), timeout=60
    )
    without = job.run_restore(BufferEditor(src, pixels), Settings(server=server_url), timeout=60)
    assert any("the file's own quantization table" in n for n in with_file.notes), with_file.notes
    assert not any("JPEG" in n for n in without.notes), without.notes


def test_mask_layer_with_the_none_method_explains_why_it_is_missing(server_url):
    editor = BufferEditor(_src(w=40, h=24), _drawing_bytes(1, 1))
    st = Settings.from_arguments({"server": server_url, "mask-method": "none", "mask-layer": True})
    outcome = job.run_restore(editor, st, timeout=60)
    assert outcome.layers == ["restored"]
    assert any("makes no line mask" in n for n in outcome.notes)


def test_server_side_errors_keep_their_code(server_url):
    """A request the real server refuses (a 1x1 layer is fine; an unknown model name is not)."""
    editor = BufferEditor(_src(w=2, h=2), b"\xff" * 4)
    client = job.load_client()

    def restore_with_model(url, data, width, height, fmt, options, on_progress, on_queued=None, **kw):
        return client.restore(
            url, data, width, height, fmt, {**options, "model": "no-such-model"}, on_progress=on_progress, **kw
        )

    with pytest.raises(job.PluginError) as e:
        job.run_restore(editor, Settings(server=server_url), restore=restore_with_model)
    assert e.value.code == "invalid_option" and "rejected an option" in e.value.message
    assert editor.layers == [] and "begin_undo" not in editor.calls


def test_token_protected_server(tmp_path):
    """A real server started with a token: refused without it, restores with it."""
    import torch

    from core.backbones import build_backbone
    from core.pipeline import Restorer
    from core.weights import save_model
    from server.app import serve_in_thread

    torch.manual_seed(1)
    save_model(build_backbone("drunet", "slim", "framework"), tmp_path / "r.safetensors")
    restorer = Restorer.from_files(restore=tmp_path / "r.safetensors", device="cpu", precision="fp32")
    with serve_in_thread(restorer, host="127.0.0.1", token="s3cret") as srv:
        st = Settings.from_arguments({"server": srv.url, "mask-method": "otsu"})
        editor = BufferEditor(_src(w=40, h=24), _drawing_bytes(1, 1))
        with pytest.raises(job.PluginError) as e:
            job.run_restore(editor, st, timeout=60)
        assert e.value.code == "unauthorized" and editor.layers == []
        assert job.run_restore(editor, st, timeout=60, token="s3cret").layers == ["restored"]


def test_quality_against_an_older_server_says_which_setting_to_change(older_server_url):
    """A server from before the self-ensemble: Standard restores, x2 fails with the dialog's fix
    and leaves the image alone."""
    editor = BufferEditor(_src(w=40, h=24), _drawing_bytes(1, 1))
    plain = job.run_restore(editor, Settings.from_arguments({"server": older_server_url}), timeout=120)
    assert plain.layers == ["restored"]
    editor = BufferEditor(_src(w=40, h=24), _drawing_bytes(1, 1))
    with pytest.raises(job.PluginError) as e:
        job.run_restore(editor, Settings.from_arguments({"server": older_server_url, "quality": "x2"}), timeout=120)
    # detected from the welcome's option list, before anything is sent
    assert e.value.code == "no_ensemble"
    assert "one pass only" in e.value.message and "set Quality to Standard" in e.value.message
    assert editor.layers == [] and "begin_undo" not in editor.calls


def test_gimp_cancel_kills_the_plug_in_and_the_server_stops_within_a_second(tmp_path):
    """GIMP's Cancel on a plug-in's progress ends the plug-in process (app/plug-in/
    gimpplugin-progress.c: gimp_plug_in_close(plug_in, TRUE)). The plug-in's connection then
    drops and the server must stop the running job at its next tile: a real plug-in job in a
    subprocess, killed half-way through a 1024x1024 two-pass job in 64-pixel tiles."""
    import logging
    import signal
    import time

    from server.app import serve_in_thread

    restorer = _slim_restorer(tmp_path, 6)
    seen: list[tuple[float, str]] = []

    class Record(logging.Handler):
        def emit(self, record):
            seen.append((time.monotonic(), record.getMessage()))

    handler = Record()
    log = logging.getLogger("server")
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.INFO)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[3])\n"
        "from lineart_gimp import job\n"
        "side = 1024\n"
        "data = bytes(0 if x % 37 < 2 else 255 for y in range(side) for x in range(side))\n"
        "def progress(f):\n"
        "    print(f, flush=True)\n"
        "job.client_restore(sys.argv[2], data, side, side, 'gray8', {'ensemble': 2}, progress, name='gimp-plugin 0.1')\n"
    )
    try:
        with serve_in_thread(restorer, host="127.0.0.1", tile=64) as srv:
            proc = subprocess.Popen(
                [sys.executable, "-c", script, str(PLUGIN_DIR), srv.url, str(PLUGIN_DIR.parents[1])],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            try:
                for line in proc.stdout:
                    if float(line) > 0.05:
                        break
                t_kill = time.monotonic()
                proc.send_signal(signal.SIGKILL)  # what GIMP's Cancel does to the plug-in
            finally:
                proc.wait(30)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any("cancelled after" in m for _, m in seen):
                time.sleep(0.02)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    cancelled = [t for t, m in seen if "cancelled after" in m]
    assert cancelled, [m for _, m in seen]
    print(f"the server logged the cancellation {cancelled[0] - t_kill:.3f} s after the kill")
    assert cancelled[0] - t_kill < 1.0, cancelled[0] - t_kill
