"""Build the installable Krita plug-in zip.

    python -m krita_plugin.package --output DIR [--port P] [--server-arg ARG ...] [--deps-from SITE_PACKAGES]

writes ``DIR/lineart_restore-<version>.zip`` for Tools > Scripts > Import Python Plugin from File:

    lineart_restore.desktop
    lineart_restore/                 the plug-in package (this folder's ``lineart_restore``)
    lineart_restore/vendor/          what ``plugin_common.bundle`` gives both plug-ins:
        lrclient/                    the server's protocol/client files, the shared plug-in
                                     modules (errors, launcher) and launch.json
        websockets/, msgpack/        pure-Python copies
        LICENSES/, VERSIONS.txt

``launch.json`` records the Python running this command, ``--port`` and the checkout, so the
plug-in can start ``python -m server`` itself (see ``plugin_common.launcher``). ``websockets`` and
``msgpack`` are copied from this Python, or from ``--deps-from`` (e.g. a folder made by
``pip install --target DIR "websockets>=13,<15" msgpack`` for a Krita whose Python is older than
the installed websockets requires). Krita's plug-in importer looks for directory entries, so the
zip lists every folder explicitly.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

from plugin_common.bundle import add_launch_arguments, bundle_files, launch_from_arguments, py_files
from plugin_common.launcher import LaunchConfig

__all__ = ["PLUGIN_NAME", "build_zip", "main"]

PLUGIN_NAME = "lineart_restore"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # reproducible zips


class _Zip:
    """A zip writer that adds each folder entry once, with fixed timestamps."""

    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self.dirs: set[str] = set()

    def _dir(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in self.dirs:
                self.dirs.add(d)
                info = zipfile.ZipInfo(d, _FIXED_TIME)
                info.external_attr = (0o40755 << 16) | 0x10
                self.zf.writestr(info, b"")

    def add(self, name: str, data: bytes) -> None:
        self._dir(name)
        info = zipfile.ZipInfo(name, _FIXED_TIME)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zf.writestr(info, data)

    def close(self) -> None:
        self.zf.close()


def build_zip(output: Path, deps_from: Path | None = None, launch: LaunchConfig | None = None) -> Path:
    """Write the plug-in zip into folder ``output`` and return its path; ``launch`` is what the
    plug-in uses to start the server (default: this Python, port 8765, this checkout)."""
    sys.path.insert(0, str(HERE))
    try:
        from lineart_restore import __version__ as version
    finally:
        sys.path.remove(str(HERE))
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{PLUGIN_NAME}-{version}.zip"
    tmp = path.with_suffix(".zip.part")
    z = _Zip(tmp)
    try:
        z.add(f"{PLUGIN_NAME}.desktop", (HERE / f"{PLUGIN_NAME}.desktop").read_bytes())
        plugin_dir = HERE / PLUGIN_NAME
        for f in py_files(plugin_dir, {"__pycache__", "vendor"}):
            rel = f.relative_to(plugin_dir)
            z.add(f"{PLUGIN_NAME}/{rel.as_posix()}", f.read_bytes())
        for extra in ("Manual.html",):
            if (plugin_dir / extra).is_file():
                z.add(f"{PLUGIN_NAME}/{extra}", (plugin_dir / extra).read_bytes())

        vendor = f"{PLUGIN_NAME}/vendor"
        z.add(f"{vendor}/__init__.py", b'"""Bundled copies of the client\'s dependencies (see VERSIONS.txt)."""\n')
        for rel, data in bundle_files(launch, deps_from, f"Krita plug-in {version}"):
            z.add(f"{vendor}/{rel}", data)
    except BaseException:
        z.close()
        tmp.unlink(missing_ok=True)
        raise
    z.close()
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m krita_plugin.package",
        description="Build the Krita plug-in zip (Tools > Scripts > Import Python Plugin from File).",
    )
    parser.add_argument("--output", "-o", type=Path, default=Path("dist"), help="folder for the zip (default: dist)")
    parser.add_argument(
        "--deps-from",
        type=Path,
        default=None,
        help="site-packages-like folder to take websockets and msgpack from (default: this Python's)",
    )
    add_launch_arguments(parser)
    args = parser.parse_args(argv)
    launch = launch_from_arguments(args)
    path = build_zip(args.output, args.deps_from, launch)
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {n} entries)")
    print(f"the plug-in starts the server with: {' '.join(launch.command(launch.port))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
