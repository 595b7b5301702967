"""Build the installable Krita plug-in zip.

    python -m krita_plugin.package --output DIR [--deps-from SITE_PACKAGES]

writes ``DIR/lineart_restore-<version>.zip`` for Tools > Scripts > Import Python Plugin from File:

    lineart_restore.desktop
    lineart_restore/                 the plug-in package (this folder's ``lineart_restore``)
    lineart_restore/vendor/
        lrclient/                    server/protocol.py, client.py, jpegfile.py and core/options.py
        websockets/                  pure-Python copy (the optional C speed-up is left out)
        msgpack/                     pure-Python copy (``fallback.py`` is used without the C module)
        LICENSES/                    the two libraries' licence files
        VERSIONS.txt                 versions and Python requirements of what was bundled

``websockets`` and ``msgpack`` are copied from the Python running this script, or from
``--deps-from`` (e.g. a folder made by ``pip install --target DIR "websockets>=13,<15" msgpack``
for a Krita whose Python is older than the installed websockets requires). Krita's plug-in importer
looks for directory entries, so the zip lists every folder explicitly.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from server import CLIENT_SOURCES

__all__ = ["PLUGIN_NAME", "build_zip", "main"]

PLUGIN_NAME = "lineart_restore"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: Files the plug-in bundles as ``vendor/lrclient`` (sans-I/O protocol, client, JPEG table reader,
#: option table): name in the bundle -> source file.
SERVER_FILES = CLIENT_SOURCES
#: Bundled third-party packages: name -> licence file names to look for in the dist-info.
VENDORED = {"websockets": ("LICENSE",), "msgpack": ("COPYING", "LICENSE")}
# Parts of websockets the plug-in never imports and that need extra packages.
_SKIP_DIRS = {"__pycache__", "trio"}
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # reproducible zips


def _package_dir(name: str, deps_from: Path | None) -> Path:
    if deps_from is not None:
        d = deps_from / name
        if not (d / "__init__.py").is_file():
            raise SystemExit(f"--deps-from {deps_from}: no package {name!r} there")
        return d
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{name} is not installed in this Python ({sys.executable}); pip install {name}")
    return Path(spec.origin).parent


def _dist_info(pkg_dir: Path, name: str) -> Path | None:
    candidates = sorted(pkg_dir.parent.glob(f"{name}-*.dist-info"))
    return candidates[-1] if candidates else None


def _metadata(dist: Path | None) -> tuple[str, str]:
    if dist is None or not (dist / "METADATA").is_file():
        return "unknown", "unknown"
    meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"), headersonly=True)
    return meta.get("Version", "unknown"), meta.get("Requires-Python", "any")


def _py_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for f in sorted(filenames):
            if f.endswith(".py"):
                yield Path(dirpath) / f


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


def build_zip(output: Path, deps_from: Path | None = None) -> Path:
    """Write the plug-in zip into folder ``output`` and return its path."""
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
        for f in _py_files(plugin_dir):
            rel = f.relative_to(plugin_dir)
            if rel.parts[0] == "vendor":
                continue
            z.add(f"{PLUGIN_NAME}/{rel.as_posix()}", f.read_bytes())
        for extra in ("Manual.html",):
            if (plugin_dir / extra).is_file():
                z.add(f"{PLUGIN_NAME}/{extra}", (plugin_dir / extra).read_bytes())

        vendor = f"{PLUGIN_NAME}/vendor"
        z.add(f"{vendor}/__init__.py", b'"""Bundled copies of the client\'s dependencies (see VERSIONS.txt)."""\n')
        z.add(
            f"{vendor}/lrclient/__init__.py",
            b'"""server/protocol.py, client.py, jpegfile.py and core/options.py of lineart-restore, bundled side by '
            b'side."""\n',
        )
        for name, source in SERVER_FILES.items():
            z.add(f"{vendor}/lrclient/{name}", source.read_bytes())

        lines = [f"lineart_restore plug-in {version}", f"built with Python {sys.version.split()[0]}"]
        for name, licences in VENDORED.items():
            pkg = _package_dir(name, deps_from)
            for f in _py_files(pkg):
                z.add(f"{vendor}/{name}/{f.relative_to(pkg).as_posix()}", f.read_bytes())
            dist = _dist_info(pkg, name)
            ver, requires = _metadata(dist)
            lines.append(f"{name} {ver} (pure Python; Requires-Python {requires})")
            found = False
            if dist is not None:
                for lic in licences:
                    for cand in (dist / lic, dist / "licenses" / lic):
                        if cand.is_file() and not found:
                            z.add(f"{vendor}/LICENSES/{name}-{lic}", cand.read_bytes())
                            found = True
            if not found:
                raise SystemExit(f"no licence file found for {name} next to {pkg}; cannot bundle it")
        z.add(f"{vendor}/VERSIONS.txt", ("\n".join(lines) + "\n").encode())
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
    args = parser.parse_args(argv)
    path = build_zip(args.output, args.deps_from)
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {n} entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
