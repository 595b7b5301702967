"""Start the lineart-restore server from a plug-in: detached, once, and only when nothing answers.

The installers (``python -m krita_plugin.package``, ``python -m gimp_plugin.install``) record the
Python that ran them, the port and the checkout in ``launch.json`` beside this file::

    {"python": "/home/me/lineart-restore/.venv/bin/python", "port": 8765, "args": [], "cwd": "..."}

:func:`ensure_server` then does what an artist would do in a terminal:

1. :func:`probe` the address: a lineart-restore server answers -> done; something else holds the
   port -> ``port_taken`` (no second server is started on it);
2. take the start lock ``<state>/server-<port>.lock`` (created with ``O_EXCL``, so two editors or
   two clicks cannot both win); whoever holds it starts the server, the others wait for it;
3. run ``<python> -m server --port <port> [args]`` in a new session with stdin closed and its
   output in ``<state>/server-<port>.log``, so it outlives the editor's dialogs (and the editor);
4. wait until it answers (models load first, the port opens last), reporting "starting... loading
   models"; a process that exits meanwhile gives ``server_failed`` with the end of its log.

``<state>`` is :func:`state_dir`: ``$LINEART_RESTORE_STATE_DIR``, else ``$XDG_STATE_HOME`` or
``~/.local/state`` + ``/lineart-restore`` on Linux, ``~/Library/Logs/lineart-restore`` on macOS,
``%LOCALAPPDATA%\\lineart-restore`` on Windows. Standard library only (the probe's handshake
uses the bundled client, imported when needed).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import PluginError, load_client

try:  # an installed plug-in: core/options.py is bundled beside this file in ``lrclient``
    from . import options as _options  # type: ignore[attr-defined]
except ImportError:  # a source checkout: the table the protocol reads
    from server.protocol import option_table as _options

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_PORT",
    "STATE_ENV",
    "LaunchConfig",
    "state_dir",
    "log_path",
    "lock_path",
    "pid_path",
    "is_local",
    "port_of",
    "probe",
    "manual_command",
    "ensure_server",
]

CONFIG_NAME = "launch.json"
#: ``python -m server``'s default port (``core/options.py``).
DEFAULT_PORT = _options.DEFAULT_PORT
STATE_ENV = "LINEART_RESTORE_STATE_DIR"
#: A start lock older than this (or whose process is gone) is left over from a crash.
STALE_LOCK_S = 900.0
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: Variables of the editor's own Python that must not leak into the server's.
_EDITOR_PYTHON_VARS = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")


@dataclass(frozen=True)
class LaunchConfig:
    """How to start the server on this computer.

    Attributes:
        python: the interpreter of the lineart-restore environment ("" when unknown).
        port: the port the installer was told (the dialogs' default address uses it).
        args: extra ``python -m server`` arguments (e.g. ``["--fast"]``).
        cwd: folder to start in (the checkout, so ``-m server`` is found without an install).
    """

    python: str = ""
    port: int = DEFAULT_PORT
    args: tuple[str, ...] = field(default_factory=tuple)
    cwd: str = ""

    @classmethod
    def here(cls, port: int = DEFAULT_PORT, args: tuple[str, ...] | list[str] = ()) -> LaunchConfig:
        """The configuration for the Python running this code (what an installer records)."""
        checkout = Path(__file__).resolve().parents[1]
        cwd = str(checkout) if (checkout / "server" / "__main__.py").is_file() else ""
        return cls(python=sys.executable, port=int(port), args=tuple(args), cwd=cwd)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> LaunchConfig:
        """Read ``launch.json`` (default: beside this file); missing or unreadable -> defaults."""
        path = Path(path) if path is not None else Path(__file__).resolve().with_name(CONFIG_NAME)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(raw, dict):
            return cls()
        try:
            return cls(
                python=str(raw.get("python") or ""),
                port=int(raw.get("port") or DEFAULT_PORT),
                args=tuple(str(a) for a in raw.get("args") or ()),
                cwd=str(raw.get("cwd") or ""),
            )
        except (TypeError, ValueError):
            return cls()

    def to_json(self) -> str:
        d = asdict(self)
        d["args"] = list(self.args)
        return json.dumps(d, indent=1) + "\n"

    def with_python(self, python: str) -> LaunchConfig:
        """This configuration with another interpreter (an editor setting may override it)."""
        return LaunchConfig(python=python, port=self.port, args=self.args, cwd=self.cwd) if python else self

    def command(self, port: int) -> list[str]:
        return [self.python or "python", "-m", "server", "--port", str(int(port)), *self.args]


def _quote(args: list[str]) -> str:
    return subprocess.list2cmdline(args) if os.name == "nt" else shlex.join(args)


def manual_command(url: str, config: LaunchConfig | None = None) -> str:
    """The command an artist can paste into a terminal to start the server for ``url``."""
    config = config if config is not None else LaunchConfig.load()
    port = port_of(url) or config.port
    if not config.python:
        return "python -m server" + (f" --port {port}" if port != DEFAULT_PORT else "")
    cmd = _quote(config.command(port))
    return f"cd {_quote([config.cwd])} && {cmd}" if config.cwd else cmd


def state_dir(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Path:
    """Folder of the server's log and start lock (see the module docstring)."""
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    home = Path.home()
    if platform.startswith("win"):
        base = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
        return base / "lineart-restore"
    if platform == "darwin":
        return home / "Library" / "Logs" / "lineart-restore"
    base = Path(env["XDG_STATE_HOME"]) if env.get("XDG_STATE_HOME") else home / ".local" / "state"
    return base / "lineart-restore"


def log_path(port: int) -> Path:
    """Where a server started by a plug-in on ``port`` writes its log."""
    return state_dir() / f"server-{int(port)}.log"


def lock_path(port: int) -> Path:
    return state_dir() / f"server-{int(port)}.lock"


def pid_path(port: int) -> Path:
    """The process id of the last server a plug-in started on ``port`` (to stop it by hand)."""
    return state_dir() / f"server-{int(port)}.pid"


def port_of(url: str) -> int | None:
    try:
        parts = urlsplit(url)
        return parts.port or (DEFAULT_PORT if parts.hostname else None)
    except ValueError:
        return None


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_local(url: str) -> bool:
    """Whether ``url`` names this computer (the only place a plug-in can start a server)."""
    return _host_of(url) in _LOCAL_HOSTS


def probe(url: str, timeout: float = 2.0) -> str:
    """What answers at ``url``: "server" (a lineart-restore server), "nothing" (no listener) or
    "other" (something that is not a lineart-restore server holds the port)."""
    host, port = _host_of(url), port_of(url)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return "nothing"
    client, _protocol = load_client()
    try:
        with client.Client(url, open_timeout=timeout, name="lineart-restore launcher probe"):
            return "server"
    except client.ServerError:  # it speaks our protocol (e.g. refused the token): ours
        return "server"
    except client.ServerUnavailableError:
        # The TCP port accepted but no welcome came: a listener that is not ours, or a server
        # closing its port this very moment. Ask the port once more to tell the two apart.
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return "other"
        except OSError:
            return "nothing"
    except client.ClientError as e:
        # 401/403 come from our server's own checks (token, browser origin): it is ours.
        return "server" if getattr(e, "code", None) in ("unauthorized", "forbidden_origin") else "other"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C on Windows; rely on the lock's age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_lock(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "{}")
        return raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        return {}


def _lock_is_stale(path: Path) -> bool:
    info = _read_lock(path)
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False  # gone meanwhile: the caller retries
    pid = int(info.get("pid") or 0)
    if age > STALE_LOCK_S:
        return True
    if pid and not _pid_alive(pid):
        return True
    return not pid and age > 10.0  # written half-way by a process that died


def _take_lock(path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "by": "launcher", "time": time.time()}, f)
    return True


def _write_lock(path: Path, pid: int) -> None:
    tmp = path.with_suffix(".lock.part")
    tmp.write_text(json.dumps({"pid": pid, "by": "server", "time": time.time()}), encoding="utf-8")
    os.replace(tmp, path)


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _EDITOR_PYTHON_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(config: LaunchConfig, port: int, log: Path) -> subprocess.Popen:
    """Start the server detached from the editor: own session, no stdin, output to ``log``."""
    cmd = config.command(port)
    kwargs: dict[str, Any] = {}
    if os.name == "nt":
        kwargs["creationflags"] = (
            subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        )
    else:
        kwargs["start_new_session"] = True
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        out.write(f"# started by the lineart-restore plug-in at {time.ctime()}: {_quote(cmd)}\n".encode())
        out.flush()
        try:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=config.cwd or None,
                env=_server_env(),
                close_fds=True,
                **kwargs,
            )
        except OSError as e:  # no such file, not executable, cwd gone
            raise PluginError(
                "bad_python",
                f"The plug-in could not start the restore server: the Python it was installed with "
                f"({config.python}) cannot be run here. Install the plug-in again from the "
                f"lineart-restore environment, or start the server yourself:\n\n"
                f"    {manual_command(f'ws://127.0.0.1:{port}', config)}",
                details=f"{type(e).__name__}: {e}",
            ) from None


def _log_tail(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


Cancel = Callable[[], bool] | threading.Event | None


def _cancelled(cancel: Cancel) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if isinstance(cancel, threading.Event) else bool(cancel())


def _port_taken(url: str, config: LaunchConfig) -> PluginError:
    port = port_of(url)
    return PluginError(
        "port_taken",
        f"Another program (not the restore server) is using port {port} on this computer, so the "
        f"restore server cannot start there. Close that program, or use another port: put "
        f"ws://127.0.0.1:{port + 1 if port and port < 65535 else 8766} in the Server field "
        f"and press Start server again.",
        details=f"probe of {url}: something answers that is not a lineart-restore server",
    )


def ensure_server(
    url: str,
    config: LaunchConfig,
    *,
    on_status: Callable[[str], None] | None = None,
    timeout: float = 300.0,
    cancel: Cancel = None,
    poll_s: float = 0.25,
) -> str:
    """Make sure a lineart-restore server answers at ``url``, starting one if nothing does.

    Returns:
        "running" (one answered already), "started" (this call started it) or "joined" (another
        editor or click was starting it; this call waited for it).

    Raises:
        PluginError: "not_local", "no_python", "port_taken", "bad_python", "server_failed",
            "start_timeout" or "cancelled", each with the command to start the server by hand.
    """
    say = on_status or (lambda text: None)
    if not is_local(url):
        raise PluginError(
            "not_local",
            f"The plug-in can only start a server on this computer, and {url} names another one. "
            "Start the server on that machine, or put ws://127.0.0.1:8765 in the Server field.",
        )
    port = port_of(url)
    assert port is not None
    state = probe(url)
    if state == "server":
        return "running"
    if state == "other":
        raise _port_taken(url, config)
    if not config.python:
        raise PluginError(
            "no_python",
            "The plug-in does not know where lineart-restore is installed, so it cannot start the "
            "server. Install the plug-in with the installer of your lineart-restore environment "
            "(python -m krita_plugin.package, python -m gimp_plugin.install), or start the "
            f"server yourself:\n\n    {manual_command(url, config)}",
        )
    lock, log = lock_path(port), log_path(port)
    deadline = time.monotonic() + timeout
    joined = False
    while True:
        if _take_lock(lock):
            try:
                proc = _spawn(config, port, log)
            except BaseException:
                lock.unlink(missing_ok=True)
                raise
            _write_lock(lock, proc.pid)
            pid_path(port).write_text(f"{proc.pid}\n", encoding="utf-8")
            say("Starting the restore server... loading models (this can take a minute).")
            return _wait_for(url, config, proc, lock, log, deadline, cancel, poll_s, say)
        # Someone else holds the lock: a start is in progress, or a crash left the lock behind.
        if _lock_is_stale(lock):
            lock.unlink(missing_ok=True)
            continue
        if not joined:
            say("The restore server is starting (from another window)... loading models.")
            joined = True
        while lock.exists():
            if probe(url) == "server":
                return "joined"
            if _cancelled(cancel):
                raise PluginError("cancelled", "Cancelled. The server keeps starting in the background.")
            if time.monotonic() > deadline:
                raise _timeout(url, config, log)
            if _lock_is_stale(lock):
                break
            time.sleep(poll_s)
        state = probe(url)
        if state == "server":
            return "joined"
        if state == "other":
            raise _port_taken(url, config)
        # The other start failed (its window showed why): try ourselves, the log will tell.


def _timeout(url: str, config: LaunchConfig, log: Path) -> PluginError:
    return PluginError(
        "start_timeout",
        f"The restore server has not answered yet (it may still be loading its models). Its log is "
        f"{log}. Try again in a moment, or start it yourself to watch it:\n\n"
        f"    {manual_command(url, config)}",
        details=_log_tail(log),
    )


def _wait_for(
    url: str,
    config: LaunchConfig,
    proc: subprocess.Popen,
    lock: Path,
    log: Path,
    deadline: float,
    cancel: Cancel,
    poll_s: float,
    say: Callable[[str], None],
) -> str:
    """Wait for the server this call started; the lock goes when it answers or exits."""
    t0 = time.monotonic()
    while True:
        code = proc.poll()
        if code is not None:
            lock.unlink(missing_ok=True)
            tail = _log_tail(log)
            raise PluginError(
                "server_failed",
                f"The restore server stopped while starting (exit code {code}). The end of its log "
                f"({log}):\n\n{tail}\n\nStart it yourself to see the whole message:\n\n"
                f"    {manual_command(url, config)}",
                details=tail,
            )
        state = probe(url)
        if state == "server":
            lock.unlink(missing_ok=True)
            return "started"
        if state == "other":  # another program took the port meanwhile; ours will fail to bind
            lock.unlink(missing_ok=True)
            raise _port_taken(url, config)
        if _cancelled(cancel):
            # The server keeps loading; the lock (its pid) makes other starts wait for it.
            raise PluginError("cancelled", "Cancelled. The server keeps starting in the background.")
        if time.monotonic() > deadline:
            raise _timeout(url, config, log)
        say(f"Starting the restore server... loading models ({time.monotonic() - t0:.0f} s).")
        time.sleep(poll_s)
