"""The server launcher both plug-ins use (``plugin_common.launcher``), with real processes: a
listener that is not our server, a Python that does not exist, a Python without the project, two
starts at once (one server), and a started server that outlives its starter's session."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from plugin_common import errors, launcher
from plugin_common.launcher import LaunchConfig
from server import client
from tests.subprocess_server import slim_server_args, stop_pid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch) -> Path:
    """Logs, locks and pid files of this test in its own folder."""
    d = tmp_path / "state"
    monkeypatch.setenv(launcher.STATE_ENV, str(d))
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def slim_models(tmp_path_factory) -> list[str]:
    """``python -m server`` arguments for random-weight slim models (fast to load) on the CPU."""
    return slim_server_args(tmp_path_factory.mktemp("models"))


def test_config_round_trip_and_manual_command(tmp_path):
    config = LaunchConfig(python="/opt/lr env/bin/python", port=9100, args=("--fast",), cwd="/src/lr")
    (tmp_path / "launch.json").write_text(config.to_json())
    assert LaunchConfig.load(tmp_path / "launch.json") == config
    assert LaunchConfig.load(tmp_path / "missing.json") == LaunchConfig()
    (tmp_path / "bad.json").write_text("[1, 2")
    assert LaunchConfig.load(tmp_path / "bad.json") == LaunchConfig()
    assert launcher.manual_command("ws://127.0.0.1:9200", config) == (
        "cd /src/lr && '/opt/lr env/bin/python' -m server --port 9200 --fast"
    )
    assert launcher.manual_command("ws://127.0.0.1:8765", LaunchConfig()) == "python -m server"
    assert launcher.manual_command("ws://127.0.0.1:9", LaunchConfig()) == "python -m server --port 9"
    here = LaunchConfig.here(9300)
    assert here.python == sys.executable and here.cwd == str(REPO) and here.port == 9300


def test_state_dir_per_platform(tmp_path):
    assert launcher.state_dir({launcher.STATE_ENV: "/x"}, "linux") == Path("/x")
    assert launcher.state_dir({"XDG_STATE_HOME": "/st"}, "linux") == Path("/st/lineart-restore")
    assert launcher.state_dir({"LOCALAPPDATA": "/la"}, "win32") == Path("/la/lineart-restore")
    assert launcher.state_dir({}, "darwin") == Path.home() / "Library/Logs/lineart-restore"


def test_a_remote_address_is_not_started():
    with pytest.raises(errors.PluginError) as e:
        launcher.ensure_server("ws://192.0.2.1:8765", LaunchConfig.here())
    assert e.value.code == "not_local"


def test_a_port_held_by_another_program_is_a_clear_error(state):
    """Something that is not a lineart-restore server holds the port: no server is started."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def answer_http() -> None:  # an ordinary web server's refusal
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    threading.Thread(target=answer_http, daemon=True).start()
    try:
        url = f"ws://127.0.0.1:{port}"
        assert launcher.probe(url) == "other"
        t0 = time.monotonic()
        with pytest.raises(errors.PluginError) as e:
            launcher.ensure_server(url, LaunchConfig.here(port))
        assert time.monotonic() - t0 < 10
    finally:
        listener.close()
    assert e.value.code == "port_taken"
    assert f"port {port}" in e.value.message and "Another program" in e.value.message
    assert not launcher.log_path(port).exists() and not launcher.lock_path(port).exists()


def test_a_bad_python_path_fails_at_once_with_the_command_to_run():
    port = _free_port()
    config = LaunchConfig(python="/nonexistent/lineart/bin/python", port=port, cwd=str(REPO))
    t0 = time.monotonic()
    with pytest.raises(errors.PluginError) as e:
        launcher.ensure_server(f"ws://127.0.0.1:{port}", config, timeout=60)
    assert time.monotonic() - t0 < 5
    assert e.value.code == "bad_python"
    assert "/nonexistent/lineart/bin/python" in e.value.message
    assert f"/nonexistent/lineart/bin/python -m server --port {port}" in e.value.message
    assert not launcher.lock_path(port).exists()  # the next try is not blocked


def test_a_python_without_the_project_reports_the_servers_own_words(tmp_path):
    """The interpreter runs but ``-m server`` is not there (wrong environment): the error quotes
    the end of the log instead of waiting for the timeout."""
    system = Path("/usr/bin/python3")
    if not system.is_file() or subprocess.run([str(system), "-c", "import server"], cwd=tmp_path).returncode == 0:
        pytest.skip("needs a Python without lineart-restore (/usr/bin/python3)")
    port = _free_port()
    config = LaunchConfig(python=str(system), port=port, cwd=str(tmp_path))
    t0 = time.monotonic()
    with pytest.raises(errors.PluginError) as e:
        launcher.ensure_server(f"ws://127.0.0.1:{port}", config, timeout=120)
    assert time.monotonic() - t0 < 60
    assert e.value.code == "server_failed"
    assert "No module named server" in e.value.message and str(launcher.log_path(port)) in e.value.message
    assert not launcher.lock_path(port).exists()


def test_two_starts_at_once_make_one_server(slim_models, state):
    """Two editors (two processes) press Start server together: one starts the server, the other
    waits for it; both then reach it, and a third start finds it running."""
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    config = LaunchConfig(python=sys.executable, port=port, args=tuple(slim_models), cwd=str(REPO))
    script = (
        "import sys, json; from plugin_common import launcher; from plugin_common.launcher import LaunchConfig\n"
        "config = LaunchConfig(**json.loads(sys.argv[2]))\n"
        "print(launcher.ensure_server(sys.argv[1], config, timeout=240))\n"
    )
    spec = json.dumps({"python": config.python, "port": port, "args": list(config.args), "cwd": config.cwd})
    editors = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, spec],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outs = [p.communicate(timeout=300) for p in editors]
        assert all(p.returncode == 0 for p in editors), outs
        assert sorted(out.strip() for out, _ in outs) == ["joined", "started"]
        log = launcher.log_path(port).read_text()
        assert log.count("# started by the lineart-restore plug-in") == 1
        assert not launcher.lock_path(port).exists()
        with client.Client(url) as c:
            assert c.welcome.server_version
        statuses: list[str] = []
        assert launcher.ensure_server(url, config, on_status=statuses.append) == "running" and statuses == []
        pid = int(launcher.pid_path(port).read_text())
        # detached: its own session, and it outlived the editor process that started it
        assert os.getsid(pid) == pid != os.getsid(0)
    finally:
        for p in editors:
            if p.poll() is None:
                p.kill()
        if launcher.pid_path(port).exists():
            stop_pid(launcher.pid_path(port))


def test_start_reports_loading_models(slim_models, state):
    """One start in this process: the status says the models are loading until it answers."""
    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    config = LaunchConfig(python=sys.executable, port=port, args=tuple(slim_models), cwd=str(REPO))
    statuses: list[str] = []
    try:
        assert launcher.ensure_server(url, config, on_status=statuses.append, timeout=240) == "started"
        assert statuses and all("loading models" in s for s in statuses)
    finally:
        stop_pid(launcher.pid_path(port))


def test_a_stale_lock_from_a_crash_does_not_block(state):
    port = _free_port()
    lock = launcher.lock_path(port)
    lock.parent.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f'{{"pid": {dead.pid}, "by": "server"}}')
    config = LaunchConfig(python="/nonexistent/python", port=port)
    with pytest.raises(errors.PluginError) as e:  # it got past the lock to the start itself
        launcher.ensure_server(f"ws://127.0.0.1:{port}", config, timeout=30)
    assert e.value.code == "bad_python"
