"""Install the GIMP 3 plug-in into a GIMP profile: ``python -m gimp_plugin.install``.

What it does (and prints, one line per action):

1. finds the GIMP 3 profile folder (``--gimp-dir``, else ``$GIMP3_DIRECTORY``, else per OS:
   Linux ``$XDG_CONFIG_HOME/GIMP/3.x`` or the Flatpak's ``~/.var/app/org.gimp.GIMP/config/GIMP/3.x``,
   macOS ``~/Library/Application Support/GIMP/3.x``, Windows ``%APPDATA%\\GIMP\\3.x``; the newest
   existing ``3.x`` wins, ``3.0`` when there is none yet);
2. replaces ``<profile>/plug-ins/lineart_restore/`` with a fresh copy of
   ``gimp_plugin/lineart_restore/`` (the entry file and the GIMP-free ``lineart_gimp`` package);
3. bundles next to it what GIMP's own Python lacks: the pure-Python parts of ``websockets`` and
   ``msgpack`` taken from this Python environment (compiled speed-ups are left out; both packages
   fall back to pure Python), their license files, and the package ``lrclient`` holding the
   project's ``server/protocol.py``, ``client.py``, ``jpegfile.py`` and ``core/options.py``;
4. makes the entry file executable (GIMP only runs executable plug-ins on Linux and macOS).

Restart GIMP afterwards; the command is under Filters > Enhance > Restore JPEG Line Art...
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Callable, Mapping

__all__ = ["PLUGIN_NAME", "PLUGIN_SOURCE", "default_gimp_dir", "install", "main"]

PLUGIN_NAME = "lineart_restore"
#: The plug-in folder in this checkout / installed package.
PLUGIN_SOURCE = Path(__file__).resolve().parent / PLUGIN_NAME
#: Third-party pure-Python packages bundled into the plug-in folder (import name -> distribution).
VENDORED = {"websockets": "websockets", "msgpack": "msgpack"}
#: Files never copied: caches, compiled extensions and their sources.
_SKIP = re.compile(r"(^__pycache__$|\.pyc$|\.so$|\.pyd$|\.dylib$|\.c$|\.h$)")

_LRCLIENT_INIT = '''"""The lineart-restore wire protocol and client, bundled for the GIMP plug-in.

Copies of ``server/protocol.py``, ``client.py``, ``jpegfile.py`` and ``core/options.py`` made by
``python -m gimp_plugin.install``;
edit the originals in the lineart-restore repository, not these.
"""
'''


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


def _newest_3x(gimp_root: Path) -> Path:
    """``gimp_root/3.N`` for the highest existing N, else ``gimp_root/3.0``."""
    found = []
    if gimp_root.is_dir():
        for child in gimp_root.iterdir():
            if child.is_dir() and re.fullmatch(r"3\.\d+", child.name):
                found.append(child.name)
    return gimp_root / (max(found, key=_version_key) if found else "3.0")


def default_gimp_dir(
    platform: str = sys.platform, env: Mapping[str, str] = os.environ, home: Path | None = None
) -> Path:
    """The GIMP 3 profile folder for this user (see the module docstring for the rules).

    Args:
        platform: a ``sys.platform`` value ("linux", "darwin", "win32", ...).
        env: environment variables (``GIMP3_DIRECTORY``, ``XDG_CONFIG_HOME``, ``APPDATA``).
        home: the user's home folder (default ``Path.home()``).
    """
    if env.get("GIMP3_DIRECTORY"):
        return Path(env["GIMP3_DIRECTORY"])
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        appdata = Path(env["APPDATA"]) if env.get("APPDATA") else home / "AppData" / "Roaming"
        return _newest_3x(appdata / "GIMP")
    if platform == "darwin":
        return _newest_3x(home / "Library" / "Application Support" / "GIMP")
    config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    native = config / "GIMP"
    flatpak = home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"
    if not native.is_dir() and flatpak.is_dir():
        return _newest_3x(flatpak)
    return _newest_3x(native)


def _ignore(_dir: str, names: list[str]) -> list[str]:
    return [n for n in names if _SKIP.search(n)]


def _package_dir(name: str) -> Path:
    try:
        module = __import__(name)
    except ImportError as e:
        raise SystemExit(
            f"error: cannot bundle {name!r}: it is not installed in this Python ({sys.executable}): {e}. "
            "Run the installer from the lineart-restore environment (pip install -e .)."
        ) from None
    return Path(module.__file__).resolve().parent


def _license_files(distribution: str) -> list[Path]:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return []
    out = []
    for f in dist.files or ():
        if re.search(r"(LICEN[CS]E|COPYING|NOTICE)", f.name, re.IGNORECASE):
            out.append(Path(dist.locate_file(f)))
    return [p for p in out if p.is_file()]


def _client_sources() -> dict[str, Path]:
    """The project's protocol, client and option table to bundle as the package ``lrclient``: file
    name in the bundle -> source file (``server.CLIENT_SOURCES``)."""
    try:
        import server  # the lineart-restore server package
    except ImportError as e:
        raise SystemExit(f"error: cannot find the lineart-restore 'server' package to bundle its client: {e}") from None
    missing = [str(p) for p in server.CLIENT_SOURCES.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"error: missing {', '.join(missing)}")
    return dict(server.CLIENT_SOURCES)


def install(gimp_dir: Path, *, dry_run: bool = False, say: Callable[[str], None] = print) -> Path:
    """Install the plug-in under ``gimp_dir/plug-ins/lineart_restore`` and return that folder.

    An existing installation there is removed first. With ``dry_run`` nothing is written; the
    actions are only printed.

    Raises:
        SystemExit: a source to copy is missing (not run from a lineart-restore environment).
    """
    gimp_dir = Path(gimp_dir).expanduser()
    dest = gimp_dir / "plug-ins" / PLUGIN_NAME
    entry = PLUGIN_SOURCE / f"{PLUGIN_NAME}.py"
    if not entry.is_file():
        raise SystemExit(f"error: plug-in source {entry} not found")
    client_files = _client_sources()
    packages = {name: _package_dir(name) for name in VENDORED}
    prefix = "would " if dry_run else ""

    say(f"GIMP 3 profile folder: {gimp_dir}")
    if dest.exists():
        say(f"{prefix}remove previous installation {dest}")
        if not dry_run:
            shutil.rmtree(dest)
    say(f"{prefix}copy plug-in {PLUGIN_SOURCE} -> {dest}")
    if not dry_run:
        shutil.copytree(PLUGIN_SOURCE, dest, ignore=_ignore)
    for name, folder in packages.items():
        dist = VENDORED[name]
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        say(f"{prefix}bundle {name} {version} (pure Python) from {folder} -> {dest / name}")
        if not dry_run:
            shutil.copytree(folder, dest / name, ignore=_ignore)
        for lic in _license_files(dist):
            target = dest / "licenses" / f"{dist}-{lic.name}"
            say(f"{prefix}copy license {lic} -> {target}")
            if not dry_run:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(lic, target)
    say(f"{prefix}bundle lrclient ({', '.join(client_files)}) -> {dest / 'lrclient'}")
    if not dry_run:
        (dest / "lrclient").mkdir()
        (dest / "lrclient" / "__init__.py").write_text(_LRCLIENT_INIT, encoding="utf-8")
        for name, source in client_files.items():
            shutil.copyfile(source, dest / "lrclient" / name)
    target_entry = dest / f"{PLUGIN_NAME}.py"
    say(f"{prefix}make {target_entry} executable")
    if not dry_run:
        mode = target_entry.stat().st_mode
        target_entry.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if not dry_run:
        say("installed. Restart GIMP 3; the command is Filters > Enhance > Restore JPEG Line Art... "
            "(it needs a running server: python -m server)")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gimp_plugin.install",
        description="Install the 'Restore JPEG Line Art' plug-in into GIMP 3's plug-ins folder.",
    )
    parser.add_argument(
        "--gimp-dir",
        type=Path,
        default=None,
        help="GIMP 3 profile folder (the one holding plug-ins/); default: $GIMP3_DIRECTORY or the "
        f"usual folder for this OS, here {default_gimp_dir()}",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    args = parser.parse_args(argv)
    gimp_dir = args.gimp_dir if args.gimp_dir is not None else default_gimp_dir()
    install(gimp_dir, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
