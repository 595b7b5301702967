"""Talking to the restore server through the shared client (``server/client.py``).

Inside Krita the client, ``server/protocol.py``, ``websockets`` and ``msgpack`` come from the
``vendor`` folder that ``python -m krita_plugin.package`` puts next to this file; in a source
checkout (unit tests) they come from the installed ``server`` package. No Qt here: the worker
thread calls :class:`ServerSession` directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .common import BUNDLED, errors, launcher
from .errors import PluginError
from .restore import Job, Outcome, ServerAnswer, run_on_server
from .settings import ENSEMBLE_SIZES, MASK_METHODS, Settings

__all__ = ["load_client", "ServerInfo", "ServerSession", "options_for", "plugin_error", "launch_config", "start_server"]

CLIENT_NAME = "krita-lineart-restore"
#: What to change in this dialog when the server has no self-ensemble.
ENSEMBLE_FIX = "Set Quality to Standard, or press Check server to see what this server offers."


def load_client() -> tuple[Any, Any]:
    """Import and return the ``(client, protocol)`` modules (the bundled copies in an installed
    plug-in, the ``server`` package in a checkout).

    Raises:
        PluginError: ``bundle_missing`` when they cannot be imported.
    """
    try:
        return errors.load_client()
    except PluginError as e:
        if BUNDLED:
            raise PluginError(
                "bundle_missing",
                "The plug-in's bundled libraries are damaged. Re-install it from the zip made by "
                "`python -m krita_plugin.package`.",
                details=e.details,
            ) from None
        raise PluginError(
            "bundle_missing",
            "The plug-in was installed without its bundled libraries (websockets, msgpack, the "
            "server protocol). Install the zip made by `python -m krita_plugin.package` with "
            "Tools > Scripts > Import Python Plugin from File.",
            details=e.details,
        ) from None


def launch_config(python: str = "") -> Any:
    """How this computer starts the server (``launch.json`` written by the packager), with the
    Python from the plug-in's settings when one is set there."""
    return launcher.LaunchConfig.load().with_python(python)


def start_server(
    url: str,
    python: str = "",
    cancel: threading.Event | None = None,
    on_status: Callable[[str], None] | None = None,
) -> str:
    """Start the server for ``url`` unless one answers (``plugin_common.launcher.ensure_server``);
    meant for a worker thread. Returns "running", "started" or "joined"."""
    return launcher.ensure_server(url, launch_config(python), on_status=on_status, cancel=cancel)


def options_for(settings: Settings) -> dict[str, Any]:
    """The ``restore`` options (``server.protocol.Options`` fields) for the dialog's choices.
    ``ensemble`` is sent only when above 1 (the protocol leaves defaults out in any case), so a
    plain run also works with servers older than the option."""
    options = {
        "mask": settings.mask_method,
        "threshold": bool(settings.threshold),
        "theta": int(settings.theta),
        "background": settings.background,
        "return_mask": bool(settings.add_mask_layer),
        "model": settings.model or None,
    }
    if settings.ensemble > 1:
        options["ensemble"] = int(settings.ensemble)
    return options


def plugin_error(exc: BaseException, url: str, python: str = "") -> PluginError:
    """Translate a client error (anything with a ``code``) into artist-facing words, with the
    exact command (right Python, right port) to start the server by hand."""
    return errors.from_client_error(exc, url, launcher.manual_command(url, launch_config(python)))


@dataclass(frozen=True)
class ServerInfo:
    """What the dialog shows about a server: its models, mask methods and device."""

    url: str
    models: list[str]
    mask_methods: list[str]
    device: str
    version: str
    formats: list[str] = field(default_factory=list)
    #: Self-ensemble sizes the server takes; ``[1]`` for a server without the option.
    ensemble_sizes: list[int] = field(default_factory=lambda: [1])


def _info(url: str, welcome: Any) -> ServerInfo:
    options = welcome.options or {}
    masks = list(MASK_METHODS)
    mask_opt = options.get("mask")
    if isinstance(mask_opt, dict) and isinstance(mask_opt.get("choices"), list):
        masks = [str(m) for m in mask_opt["choices"]]
    sizes = [1]
    ensemble_opt = options.get("ensemble")
    if isinstance(ensemble_opt, dict) and isinstance(ensemble_opt.get("choices"), list):
        sizes = [n for n in ENSEMBLE_SIZES if n in ensemble_opt["choices"]] or [1]
    return ServerInfo(
        url=url,
        models=list(welcome.models),
        mask_methods=masks,
        device=welcome.device,
        version=welcome.server_version,
        formats=list(welcome.formats),
        ensemble_sizes=sizes,
    )


class ServerSession:
    """One connection for one job; meant for a worker thread.

    Args:
        url: ``ws://host:port`` (already normalised by ``Settings.check``).
        cancel: set it from any thread to cancel; the running request is cancelled on the server.
        on_progress: ``(fraction 0..1, text)`` callback, called on the worker thread.
        source_file: the document's file, passed to the client (a JPEG's table goes along).
    """

    def __init__(
        self,
        url: str,
        cancel: threading.Event | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        open_timeout: float = 5.0,
        source_file: str = "",
    ) -> None:
        self.url = url
        self.source_file = source_file
        self.cancel = cancel or threading.Event()
        self.on_progress = on_progress or (lambda f, t: None)
        self.open_timeout = open_timeout
        self._client_mod, self._protocol = load_client()
        self._client = None
        self.info: ServerInfo | None = None

    def connect(self) -> ServerInfo:
        """Open the connection and read the server's welcome. Raises :class:`PluginError`."""
        self.on_progress(0.0, "Connecting to the restore server...")
        try:
            self._client = self._client_mod.Client(self.url, name=CLIENT_NAME, open_timeout=self.open_timeout)
            welcome = self._client.connect()
        except Exception as e:
            raise plugin_error(e, self.url) from None
        self.info = _info(self.url, welcome)
        return self.info

    @property
    def accepted_formats(self) -> set[str] | None:
        return set(self.info.formats) if self.info is not None and self.info.formats else None

    def __call__(self, data: bytes, fmt: str, width: int, height: int, settings: Settings) -> ServerAnswer:
        """A ``restore.RestoreCall``: send one image, wait for the result (or the cancel)."""
        if self._client is None:
            self.connect()
        if self.cancel.is_set():
            raise PluginError("cancelled", "Cancelled.")
        errors.check_offered(self._client.welcome, settings.ensemble, ENSEMBLE_FIX)
        self.on_progress(0.0, f"Sending {width} x {height} pixels...")

        def progress(fraction: float) -> None:
            self.on_progress(fraction, f"Restoring... {fraction:.0%}")

        def queued(position: int, depth: int) -> None:
            self.on_progress(0.0, f"Waiting for the server ({position} job(s) ahead)...")

        try:
            result = self._client.restore(
                data,
                width,
                height,
                fmt,
                options_for(settings),
                on_progress=progress,
                on_queued=queued,
                cancel=self.cancel,
                source_file=self.source_file or None,
            )
        except Exception as e:
            raise plugin_error(e, self.url) from None
        self.on_progress(1.0, "Received the result.")
        return ServerAnswer(format=str(result.format), data=result.data, mask=result.mask, notes=list(result.notes))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def __enter__(self) -> ServerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def job_task(
    job: Job, start: bool = False, python: str = ""
) -> Callable[[threading.Event, Callable[[float, str], None]], Outcome]:
    """The worker-thread part of a restore as a ``Worker`` task: with ``start``, start the server
    when none answers (see :func:`start_server`); connect, then ``restore.run_on_server`` with the
    formats the server accepts."""

    def task(cancel: threading.Event, progress: Callable[[float, str], None]) -> Outcome:
        if start and launcher.is_local(job.settings.server):
            start_server(job.settings.server, python, cancel, lambda text: progress(0.0, text))
        with ServerSession(
            job.settings.server, cancel=cancel, on_progress=progress, source_file=job.source_file
        ) as session:
            session.connect()
            return run_on_server(job, session, session.accepted_formats)

    return task


def query_server(url: str, open_timeout: float = 3.0) -> ServerInfo:
    """Connect, read the welcome and disconnect (for the dialog's "Check server" button)."""
    with ServerSession(url, open_timeout=open_timeout) as s:
        return s.connect()


__all__ += ["query_server", "job_task", "CLIENT_NAME"]
