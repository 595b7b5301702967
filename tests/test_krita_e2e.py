"""End-to-end tests of the Krita plug-in in real Krita (marked ``krita``).

Set-up (``.ci/install_krita.sh`` installs it): Debian's Krita 5.1.5 with ``kritarunner``, Xvfb.
The plug-in is installed the way an artist does it: ``python -m krita_plugin.package`` builds the
zip and Krita's own "Import Python Plugin from File" code extracts it into a fresh resource folder.
A real server (``python -m server``) runs with small random-weight models.

* ``test_restore_in_krita``: kritarunner runs ``tests/krita/run_restore.py`` (the action's code
  path minus the dialog) and the new layers' pixels are compared with a direct client call; a
  coloured JPEG comes back with its strokes' hue, a gray drawing in an RGBA document neutral.
* ``test_filter_menu_and_dialog``: Krita's GUI on Xvfb with no server running, and a harness
  plug-in that checks the action is in the Filter menu, starts the server with the dialog's
  *Start server*, cancels a many-tile job half-way (the server must log the cancellation within
  1 s), then restores the JPEG while a timer keeps firing, and checks progress, layers and undo.

Tests skip (with the reason) only when Krita or Xvfb is not installed.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from krita_plugin.lineart_restore import pixels
from krita_plugin.lineart_restore.connection import options_for
from krita_plugin.lineart_restore.geometry import Rect
from krita_plugin.lineart_restore.settings import Settings
from server import client as lrclient
from tests.colour_checks import hue, hue_distance
from tests.subprocess_server import model_args, stop_pid
from training.colour import in_ink

pytestmark = pytest.mark.krita

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "krita"
JPEG = REPO / "tests" / "data" / "krita_lineart_q30.jpg"
IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer")


#: The ink of the coloured scenario (RGB).
BROWN = (101, 56, 28)


def _missing(reason: str) -> None:
    """Skip, or fail when ``LINEART_KRITA_REQUIRED=1`` (CI that installed Krita)."""
    if os.environ.get("LINEART_KRITA_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _need(cmd: str) -> str:
    path = shutil.which(cmd)
    if path is None:
        _missing(f"{cmd} is not installed (run .ci/install_krita.sh)")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Random-weight slim models, saved like the shipped ones (mask, framework, baseline)."""
    import torch

    from core.backbones import build_backbone
    from core.masknet import build_masknet
    from core.weights import save_model

    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    paths = (d / "mask.safetensors", d / "framework.safetensors", d / "baseline.safetensors")
    save_model(build_masknet("blind", "slim"), paths[0])
    save_model(build_backbone("drunet", "slim", "framework"), paths[1])
    save_model(build_backbone("drunet", "slim", "baseline"), paths[2])
    return paths


@pytest.fixture(scope="module")
def server_url(models, tmp_path_factory):
    """A real ``python -m server`` on a free loopback port; yields its ws:// URL."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = open(log_path, "w+")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server",
            "--no-token",
            "--port",
            "0",
            "--device",
            "cpu",
            "--tile",
            "256",
            *model_args(models),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        text = log_path.read_text()
        m = re.search(r"listening on (ws://\S+)", text)
        if m:
            url = m.group(1)
            break
        time.sleep(0.2)
    if url is None:
        proc.kill()
        pytest.fail(f"the server did not start:\n{log_path.read_text()}")
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _data_home() -> Path:
    """``$XDG_DATA_HOME`` for the Krita runs: kept between test sessions, because Krita builds
    its resource database there on first start (seconds on an idle machine, minutes on a busy
    one). ``$LINEART_KRITA_DATA`` overrides the place."""
    default = Path.home() / ".cache" / "lineart-restore" / "krita-test-data"
    path = Path(os.environ.get("LINEART_KRITA_DATA", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launch(models):
    """What the zip records for starting the server: this Python, a free port, the slim models,
    small tiles (a 1024^2 job has a few hundred of them)."""
    from plugin_common.launcher import LaunchConfig

    args = [
        "--device",
        "cpu",
        "--tile",
        "64",
        *model_args(models),
    ]
    return LaunchConfig.here(_free_port(), args)


@pytest.fixture(scope="module")
def pykrita(tmp_path_factory, launch) -> Path:
    """The plug-in zip installed by Krita's own importer into the test resource folder
    (replacing any earlier install there)."""
    from krita_plugin.package import build_zip

    if not (IMPORTER / "plugin_importer.py").is_file():
        _missing(f"Krita's plug-in importer is not in {IMPORTER} (run .ci/install_krita.sh)")
    zip_path = build_zip(tmp_path_factory.mktemp("dist"), launch=launch)
    resources = _data_home() / "krita"
    resources.mkdir(exist_ok=True)
    for old in ("lineart_restore", "lrtest_harness"):
        shutil.rmtree(resources / "pykrita" / old, ignore_errors=True)
    sys.path.insert(0, str(IMPORTER))
    had_i18n = hasattr(builtins, "i18n")
    builtins.i18n = lambda s: s  # Krita provides i18n() to its plug-ins; the importer uses it on errors
    try:
        from plugin_importer import PluginImporter

        imported = PluginImporter(str(zip_path), str(resources), lambda plugin: True).import_all()
    finally:
        sys.path.remove(str(IMPORTER))
        if not had_i18n:
            del builtins.i18n
    assert [p["name"] for p in imported] == ["lineart_restore"]
    assert (resources / "pykrita" / "lineart_restore.desktop").is_file()
    return resources / "pykrita"


def _x_refusal(number: int, timeout: float = 30.0) -> str | None:
    """``None`` once an X client can open display ``:number`` the way libxcb (Krita's Qt) does: the
    abstract socket "@/tmp/.X11-unix/X<n>" first, the socket file only where that one is absent or
    refuses, then the connection setup with no authorization. Otherwise, after ``timeout``
    seconds of trying, why not."""
    setup = struct.pack("<BxHHHH2x", ord("l"), 11, 0, 0, 0)  # little-endian, X11.0, no auth
    why = "not tried"
    deadline = time.monotonic() + timeout
    while True:
        for address in (f"\0/tmp/.X11-unix/X{number}", f"/tmp/.X11-unix/X{number}"):
            shown = address.replace("\0", "@")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(10)
                    sock.connect(address)
                    sock.sendall(setup)
                    head = sock.recv(8)
                    reason = sock.recv(int(head[1])) if head[:1] == b"\0" and len(head) > 1 else b""
            except OSError as e:
                why = f"{shown}: {e}"
                if address.startswith("\0") and e.errno in (errno.ENOENT, errno.ECONNREFUSED):
                    continue  # libxcb then tries the socket file
                break
            if head[:1] == b"\1":
                return None
            why = f"{shown} answered the connection setup with {head[:1]!r} {reason.decode('latin-1')!r}"
            break
        if time.monotonic() >= deadline:
            return why
        time.sleep(0.2)


@contextlib.contextmanager
def _xvfb(tmp_path: Path):
    """An Xvfb server on a display number it picks itself (``-displayfd``), so parallel test runs
    cannot race for the same display the way ``xvfb-run -a`` can; the test fails with the reason
    where no X client can connect to it (:func:`_x_refusal`). ``-noreset``: by default an X server
    resets when its last client leaves and refuses connections meanwhile, and Krita's start-up opens
    and closes the display before its main window connects: without it that failed ("could not
    connect to display") in 5 of 6 Krita starts after a client had come and gone, with it in none
    of 8. Yields ``(":N", process)``."""
    read_fd, write_fd = os.pipe()
    command = ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x860x24", "-nolisten", "tcp", "-noreset"]
    with open(tmp_path / "xvfb.log", "wb") as log:
        xvfb = subprocess.Popen(command, pass_fds=(write_fd,), stdout=log, stderr=subprocess.STDOUT)
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + 60
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 1.0)
            if ready:
                chunk = os.read(read_fd, 16)
                if not chunk:
                    break
                number += chunk
        display = number.strip().decode("ascii", "replace")
        if not display.isdigit():
            pytest.fail(f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text()[-2000:]}")
        refusal = _x_refusal(int(display))
        if refusal is not None:
            pytest.fail(f"Xvfb display :{display} accepts no X client: {refusal}")
        yield f":{display}", xvfb
    finally:
        os.close(read_fd)
        xvfb.terminate()
        try:
            xvfb.wait(10)
        except subprocess.TimeoutExpired:
            xvfb.kill()


def _direct(url, sent, model, depth, ctx: Rect, target: Rect, settings: Settings, source_file=None):
    """What the server gives for the same pixels through the client, in Krita layout, cropped."""
    with lrclient.Client(url) as c:
        wire, fmt = pixels.krita_to_wire(sent, model, depth, ctx.w, ctx.h, set(c.welcome.formats))
        res = c.restore(wire, ctx.w, ctx.h, fmt, options_for(settings), source_file=source_file)
    data, _, _ = pixels.wire_to_krita(res.data, str(res.format), ctx.w, ctx.h)
    bpp = pixels.bytes_per_pixel(str(res.format))
    mask = pixels.crop(res.mask, 1, ctx, target) if res.mask is not None else None
    return pixels.crop(data, bpp, ctx, target), mask, fmt


def test_restore_in_krita(pykrita, server_url, tmp_path):
    _need("kritarunner")
    out = tmp_path / "out"
    out.mkdir()
    down = "ws://127.0.0.1:9"  # discard port: nothing listens there
    env = dict(
        os.environ,
        PYTHONPATH=f"{pykrita}{os.pathsep}{HERE}",
        QT_QPA_PLATFORM="offscreen",
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        XDG_DATA_HOME=str(pykrita.parent.parent),
    )
    # The same drawing written with a table no IJG quality gives (as another encoder would).
    from PIL import Image

    own_table = [min(255, 2 + (i % 8) + 3 * (i // 8)) for i in range(64)]
    own_jpeg = tmp_path / "other_encoder.jpg"
    Image.open(JPEG).save(own_jpeg, "JPEG", qtables=[own_table])
    colour_jpeg = tmp_path / "brown_lines.jpg"
    Image.fromarray(in_ink(np.asarray(Image.open(JPEG).convert("L")), BROWN), "RGB").save(
        colour_jpeg, "JPEG", quality=40
    )
    proc = subprocess.run(
        ["kritarunner", "-s", "run_restore", str(JPEG), server_url, str(out), down, str(own_jpeg), str(colour_jpeg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result_file = out / "result.json"
    assert result_file.is_file(), (
        f"kritarunner wrote no result (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    r = json.loads(result_file.read_text())
    assert "exception" not in r, r.get("traceback")
    assert r["krita"].startswith("5.") and r["plugin_file"].startswith(str(pykrita))

    # gray JPEG, whole layer, with mask
    g = r["gray"]
    assert r["gray_src"]["model"] == "GRAYA" and r["gray_src"]["depth"] == "U8"
    w, h = r["gray_src"]["size"]
    assert g["target"] == [0, 0, w, h] and g["context"] == [0, 0, w, h]
    name = r["gray_src"]["name"]
    assert [l["name"] for l in g["layers"]] == [f"{name} restored", f"{name} line mask"]
    assert g["children"][:3] == [name, f"{name} restored", f"{name} line mask"]
    assert g["src_unchanged"] and g["src_still"] == [name, "GRAYA", "U8"]
    assert g["layers"][0]["model"] == "GRAYA" and g["layers"][1]["visible"] is False
    assert any(0 < f < 1 or t.startswith("Restoring") for f, t in g["progress"])
    sent = (out / "gray_sent.bin").read_bytes()
    assert sent == (out / "gray_src_before.bin").read_bytes()
    full = Rect(0, 0, w, h)
    want, want_mask, fmt = _direct(
        server_url,
        sent,
        "GRAYA",
        "U8",
        full,
        full,
        Settings(server=server_url, mask_method="learnt", add_mask_layer=True),
        JPEG,
    )
    assert any("the file's quantization table" in n for n in g["notes"]), g["notes"]
    assert fmt == "graya8"
    got = (out / "gray_layer0.bin").read_bytes()
    assert got == want
    assert got != sent  # the restoration changed something
    assert (out / "gray_layer1.bin").read_bytes() == pixels.mask_to_graya8(want_mask)

    # a JPEG of another encoder: the plug-in read the file's own table and the server used it
    o = r["own_table"]
    assert Path(o["file"]) == own_jpeg
    assert any("the file's own quantization table" in n for n in o["notes"]), o["notes"]
    full_o = Rect(*o["context"])
    want_o, _, _ = _direct(
        server_url,
        (out / "own_table_sent.bin").read_bytes(),
        "GRAYA",
        "U8",
        full_o,
        full_o,
        Settings(server=server_url, mask_method="otsu"),
        own_jpeg,
    )
    assert (out / "own_table_layer0.bin").read_bytes() == want_o

    # a coloured JPEG (RGBA U8 in Krita, BGRA bytes): restored in its colours, strokes still brown
    c = r["colour"]
    assert c["src_model"] == ["RGBA", "U8"] and c["src_unchanged"]
    full_c = Rect(*c["context"])
    csent = (out / "colour_sent.bin").read_bytes()
    want_c, _, fmt_c = _direct(server_url, csent, "RGBA", "U8", full_c, full_c, Settings(server=server_url))
    assert fmt_c == "bgra8"
    got_c = (out / "colour_layer0.bin").read_bytes()
    assert got_c == want_c and not any("gray" in n for n in c["notes"]), c["notes"]
    rgb = np.frombuffer(got_c, np.uint8).reshape(full_c.h, full_c.w, 4)[..., 2::-1]
    src_rgb = np.frombuffer(csent, np.uint8).reshape(full_c.h, full_c.w, 4)[..., 2::-1]
    strokes = src_rgb.min(axis=2) < 160
    assert strokes.mean() > 0.01
    assert hue_distance(hue(rgb[strokes].mean(axis=0)), hue(BROWN)) < 10
    assert (rgb.max(axis=2).astype(int) - rgb.min(axis=2))[strokes].mean() > 20  # coloured, not gray

    # errors in artist's words
    assert r["err_group"]["code"] == "wrong_layer_type" and "group layer" in r["err_group"]["message"]
    assert r["err_empty"]["code"] == "empty_layer"
    assert r["err_down"]["code"] == "server_down" and "python -m server --port 9" in r["err_down"]["message"]
    assert r["err_cancel"]["code"] == "cancelled"

    # RGBA U16 with a selection: only the selection box is written, context snapped to the grid
    s = r["rgba16_sel"]
    assert r["rgba16_convert_ok"] and s["src_model"] == ["RGBA", "U16"] and s["src_unchanged"]
    target, ctx = Rect(*s["target"]), Rect(*s["context"])
    assert target == Rect(37, 29, 90, 61)
    assert ctx.contains(target) and ctx.x % 8 == 0 and ctx.y % 8 == 0
    assert s["layers"][0]["bounds"] == s["target"]
    assert (s["layers"][0]["model"], s["layers"][0]["depth"]) == ("RGBA", "U16")
    want16, _, fmt16 = _direct(
        server_url,
        (out / "rgba16_sel_sent.bin").read_bytes(),
        "RGBA",
        "U16",
        ctx,
        target,
        Settings(server=server_url, mask_method="otsu"),
    )
    assert fmt16 in ("bgra16", "rgba16")
    assert (out / "rgba16_sel_layer0.bin").read_bytes() == want16
    # a gray drawing in an RGBA document stays neutral
    px16 = np.frombuffer(want16, "<u2").reshape(target.h, target.w, 4)
    assert (px16[..., 0] == px16[..., 1]).all() and (px16[..., 1] == px16[..., 2]).all()

    # F32 is converted by Krita for the request; the source stays F32
    f = r["f32"]
    assert f["job_model"] == ["RGBA", "U16"] and f["src_model"] == ["RGBA", "F32"] and f["src_unchanged"]
    assert (f["layers"][0]["model"], f["layers"][0]["depth"]) == ("RGBA", "U16")
    assert any("converted from RGBA/F32" in n for n in f["notes"])
    ctxf = Rect(*f["context"])
    wantf, _, _ = _direct(
        server_url,
        (out / "f32_sent.bin").read_bytes(),
        "RGBA",
        "U16",
        ctxf,
        ctxf,
        Settings(server=server_url, mask_method="agt"),
    )
    assert (out / "f32_layer0.bin").read_bytes() == wantf


def _run_krita_gui(env: dict, work: Path, result: Path) -> tuple[str, str, str]:
    """Krita's GUI on a fresh Xvfb display until the harness writes ``result`` or Krita exits;
    returns (Krita's output, the display, what became of Xvfb)."""
    work.mkdir()
    log_path = work / "krita.log"
    with _xvfb(work) as (display, xvfb), open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            ["krita", "--nosplash"],
            env=dict(env, DISPLAY=display),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # A first start builds Krita's resource database (see _data_home): allow for a busy machine.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not result.exists():
            time.sleep(0.5)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        xvfb_state = "running" if xvfb.poll() is None else f"exited with {xvfb.returncode}"
    return log_path.read_text("utf-8", "replace"), display, xvfb_state


def test_filter_menu_and_dialog(pykrita, launch, tmp_path):
    """Krita's GUI under Xvfb, no server running: the action is in the Filter menu, the dialog
    starts the server itself, Cancel stops a job on the server, pressing Restore adds the layers
    while Krita keeps running. Saves the dialog screenshot (to $KRITA_SCREENSHOT_DIR too, when
    set: that is how docs/img/krita_dialog.png is made)."""
    from plugin_common import launcher

    _need("krita")
    _need("Xvfb")
    data = pykrita.parent.parent  # $XDG_DATA_HOME: Krita's resources are in $XDG_DATA_HOME/krita
    harness_src = HERE / "harness"
    dest = pykrita
    shutil.copy(harness_src / "lrtest_harness.desktop", dest / "lrtest_harness.desktop")
    shutil.copytree(harness_src / "lrtest_harness", dest / "lrtest_harness", dirs_exist_ok=True)
    cfg_home = tmp_path / "config"
    cfg_home.mkdir()
    (cfg_home / "kritarc").write_text(
        "[python]\nenable_lineart_restore=true\nenable_lrtest_harness=true\n[General]\nShowWelcomeScreen=false\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    shot = out / "krita_dialog.png"
    config = tmp_path / "harness.json"
    url = f"ws://127.0.0.1:{launch.port}"
    state = tmp_path / "state"
    server_log = state / f"server-{launch.port}.log"
    assert launcher.probe(url) == "nothing"
    config.write_text(
        json.dumps(
            {"jpeg": str(JPEG), "url": url, "out": str(out), "screenshot": str(shot), "server_log": str(server_log)}
        )
    )
    env = dict(
        os.environ,
        XDG_CONFIG_HOME=str(cfg_home),
        XDG_DATA_HOME=str(data),
        LRTEST_CONFIG=str(config),
        HOME=str(tmp_path),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    env[launcher.STATE_ENV] = str(state)
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("WAYLAND_DISPLAY", None)
    result = out / "result.json"
    log, failures = "", []
    try:
        for attempt in (1, 2):
            log, display, xvfb_state = _run_krita_gui(env, tmp_path / f"try{attempt}", result)
            if result.exists() or "could not connect to display" not in log:
                break
            # Krita's Qt could not open the display (an X server resetting refuses clients: see
            # _xvfb's -noreset). That is the X server, not the plug-in, so the run is repeated once
            # on a new server, and both failures are reported if it recurs.
            failures.append(f"attempt {attempt}: Xvfb on {display} {xvfb_state} when Krita ended")
    finally:
        server_alive = stop_pid(state / f"server-{launch.port}.pid")
    x_env = {k: v for k, v in env.items() if k.startswith(("X", "QT_", "DISPLAY"))}
    assert result.exists(), (
        f"the harness wrote no result ({'; '.join(failures) or f'Xvfb {xvfb_state}'}); "
        f"X/Qt environment {x_env}; Krita's output:\n{log[-4000:]}"
    )
    r = json.loads(result.read_text())
    assert "exception" not in r and "timeout" not in r, (r, log[-3000:])

    assert r["action_registered"]
    assert "Restore JPEG Line Art..." in r["filter_menu"] and r["action_in_filter_menu"], r.get("filter_menu")

    # nothing answered at first: the dialog said so, with the exact command, all of it visible
    assert "not running" in r["down_text"] and f"-m server --port {launch.port}" in r["down_text"]
    assert launch.python in r["down_text"] and r["down_text_fits"]
    # Start server started it (detached: it outlived Krita until the test stopped it)
    assert r["started_status"].startswith("Connected: server")
    assert server_alive
    server_text = server_log.read_text()
    assert server_text.count("# started by the lineart-restore plug-in") == 1
    # Cancel mid-job: the server stopped within a second and no layer was added
    assert r["progress_window_modal"] is False and r["cancel_button"] == "Cancel"
    assert "cancelled after" in server_text
    assert r["cancel_logged_after_s"] < 1.0, r["cancel_logged_after_s"]
    assert r["big_layers_after_cancel"] == r["big_layers_before"]
    assert ["failed", "cancelled: Cancelled."] in r["cancel_events"] or any(
        e[0] == "failed" and e[1].startswith("cancelled") for e in r["cancel_events"]
    ), r["cancel_events"]

    # the JPEG job: Krita's event loop kept running, the bar moved, the restored layer is active
    assert r["timer_ticks_during_job"] >= max(3, 0.3 * r["job_s"] / 0.05), (r["timer_ticks_during_job"], r["job_s"])
    fractions = [f for f, t in r["progress_values"] if t.startswith("Restoring")]
    assert len(fractions) >= 4 and fractions == sorted(fractions) and fractions[-1] > fractions[0], r["progress_values"]
    assert r["active_layer"] == "Background restored"
    # the other document was in front when the result came: the job's own document got it
    assert r["front_document_during_job"] == "big drawing" and r["big_layers_after_job"] == ["Background"]
    assert r["dialog_status"].startswith("Connected: server")
    assert "learnt" in r["dialog_masks"] and r["dialog_models"][0] == "(server default)"
    assert r["dialog_quality"] == [1, 2, 4, 8]  # the sizes the server's welcome lists
    assert r["screenshot_saved"] and shot.stat().st_size > 2000
    name = "Background"
    assert r["layers"][:3] == [name, f"{name} restored", f"{name} line mask"]
    assert r["source_unchanged"]
    assert r["settings_saved"] == "true"  # the ticked box was remembered in kritarc
    assert r["ensemble_saved"] == "2"  # and so was the quality picked
    assert "added" in r["status_bar"]
    # each new layer is one undo step; undoing both leaves the document as it was
    assert r["layers_after_one_undo"] == [name, f"{name} restored"]
    assert r["layers_after_two_undos"] == [name] and r["source_unchanged_after_undo"]
    assert "transparent pixels" not in r["status_bar"]  # an opaque JPEG: that note does not apply
    target = os.environ.get("KRITA_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / "krita_dialog.png")
        shutil.copy(out / "window.png", Path(target) / "krita_window.png")
        shutil.copy(out / "dialog_server_down.png", Path(target) / "krita_dialog_server_down.png")
