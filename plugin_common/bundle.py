"""The files both installers put beside the plug-in (build time; never bundled itself).

:func:`bundle_files` returns ``(relative path, bytes)`` pairs, the same tree for Krita (inside the
zip under ``lineart_restore/vendor/``) and GIMP (in ``plug-ins/lineart_restore/``)::

    lrclient/            server/protocol.py, client.py, jpegfile.py, core/options.py
                         (``server.CLIENT_SOURCES``) and
                         plugin_common/errors.py, launcher.py side by side, plus launch.json
                         (the Python, port and checkout that start the server; see ``launcher``)
    websockets/          pure-Python copy: the optional C speed-up and the trio flavour are left
                         out (the client uses the sync and asyncio flavours only)
    msgpack/             pure-Python copy (``fallback.py`` is used without the C module)
    LICENSES/            the two libraries' licence files
    VERSIONS.txt         what was bundled, with the Python versions those libraries need

``websockets`` and ``msgpack`` come from the Python running the installer, or from ``deps_from``
(a folder made by ``pip install --target DIR websockets msgpack`` with the editor's Python version).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from email.parser import Parser
from pathlib import Path

from . import BUNDLED_FILES
from .launcher import CONFIG_NAME, DEFAULT_PORT, LaunchConfig

__all__ = ["VENDORED", "CLIENT_PACKAGE", "add_launch_arguments", "bundle_files", "launch_from_arguments", "py_files"]

#: Bundled third-party packages (import names).
VENDORED = ("websockets", "msgpack")
#: The package holding the project's client side in an installed plug-in.
CLIENT_PACKAGE = "lrclient"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Folders never bundled: caches, and websockets' trio flavour (it needs the trio package).
_SKIP_DIRS = {"__pycache__", "trio"}
_LICENCE = re.compile(r"(LICEN[CS]E|COPYING|NOTICE)", re.IGNORECASE)

_INIT = '''"""The lineart-restore client side, bundled into the plug-in by its installer.

Copies of ``server/protocol.py``, ``client.py``, ``jpegfile.py``, ``core/options.py`` and
``plugin_common/errors.py``,
``launcher.py`` (edit the originals in the lineart-restore repository, not these), and
``launch.json``: how this computer starts the server.
"""
'''


def _package_dir(name: str, deps_from: Path | None) -> Path:
    if deps_from is not None:
        d = Path(deps_from) / name
        if not (d / "__init__.py").is_file():
            raise SystemExit(f"--deps-from {deps_from}: no package {name!r} there")
        return d
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(
            f"error: cannot bundle {name!r}: it is not installed in this Python ({sys.executable}). "
            "Run the installer from the lineart-restore environment (pip install -e .)."
        )
    return Path(spec.origin).parent


def _dist_info(pkg_dir: Path, name: str) -> Path | None:
    candidates = sorted(pkg_dir.parent.glob(f"{name}-*.dist-info"))
    return candidates[-1] if candidates else None


def _metadata(dist: Path | None) -> tuple[str, str]:
    if dist is None or not (dist / "METADATA").is_file():
        return "unknown", "unknown"
    meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"), headersonly=True)
    return meta.get("Version", "unknown"), meta.get("Requires-Python", "any")


def py_files(root: Path, skip_dirs: set[str] = _SKIP_DIRS):
    """The ``.py`` files under ``root`` in a stable order, without the ``skip_dirs`` folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
        for f in sorted(filenames):
            if f.endswith(".py"):
                yield Path(dirpath) / f


def bundle_files(
    launch: LaunchConfig | None = None, deps_from: Path | None = None, built_for: str = "plug-in"
) -> list[tuple[str, bytes]]:
    """The bundled tree as ``(posix relative path, content)`` pairs (see the module docstring).

    Args:
        launch: what ``launch.json`` records (default: this Python, the default port, this checkout).
        deps_from: a site-packages-like folder to take websockets and msgpack from.
        built_for: named in ``VERSIONS.txt``.

    Raises:
        SystemExit: a package or its licence is missing (not run from a lineart-restore environment).
    """
    from server import CLIENT_SOURCES

    launch = launch if launch is not None else LaunchConfig.here()
    files: list[tuple[str, bytes]] = [(f"{CLIENT_PACKAGE}/__init__.py", _INIT.encode())]
    for name, source in CLIENT_SOURCES.items():
        files.append((f"{CLIENT_PACKAGE}/{name}", source.read_bytes()))
    for name in BUNDLED_FILES:
        files.append((f"{CLIENT_PACKAGE}/{name}", (HERE / name).read_bytes()))
    files.append((f"{CLIENT_PACKAGE}/{CONFIG_NAME}", launch.to_json().encode()))

    lines = [f"lineart-restore {built_for}", f"built with Python {sys.version.split()[0]} ({sys.executable})"]
    for name in VENDORED:
        pkg = _package_dir(name, deps_from)
        for f in py_files(pkg):
            files.append((f"{name}/{f.relative_to(pkg).as_posix()}", f.read_bytes()))
        dist = _dist_info(pkg, name)
        version, requires = _metadata(dist)
        lines.append(f"{name} {version} (pure Python; Requires-Python {requires})")
        licences = sorted(p for p in dist.rglob("*") if p.is_file() and _LICENCE.search(p.name)) if dist else []
        if not licences:
            raise SystemExit(f"error: no licence file found for {name} next to {pkg}; cannot bundle it")
        for lic in licences:
            files.append((f"LICENSES/{name}-{lic.name}", lic.read_bytes()))
    files.append(("VERSIONS.txt", ("\n".join(lines) + "\n").encode()))
    return files


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """The installers' options for how the plug-in starts the server (``--port``, ``--server-arg``)."""
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port of the server the plug-in uses and starts (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra `python -m server` argument for the server the plug-in starts "
        "(repeatable; e.g. --server-arg=--fast)",
    )


def launch_from_arguments(args: argparse.Namespace) -> LaunchConfig:
    """What ``launch.json`` records for the options :func:`add_launch_arguments` added: this Python."""
    return LaunchConfig.here(args.port, args.server_arg)
