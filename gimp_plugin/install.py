"""Install the GIMP 3 plug-in into a GIMP profile: ``python -m gimp_plugin.install``.

What it does (and prints, one line per action):

1. finds the GIMP 3 profile folder (``--gimp-dir``, else ``$GIMP3_DIRECTORY``, else per OS:
   Linux ``$XDG_CONFIG_HOME/GIMP/3.x`` or the Flatpak's ``~/.var/app/org.gimp.GIMP/config/GIMP/3.x``,
   macOS ``~/Library/Application Support/GIMP/3.x``, Windows ``%APPDATA%\\GIMP\\3.x``; the newest
   existing ``3.x`` wins, ``3.0`` when there is none yet);
2. replaces ``<profile>/plug-ins/lineart_restore/`` with a fresh copy of
   ``gimp_plugin/lineart_restore/`` (the entry file and the GIMP-free ``lineart_gimp`` package);
3. bundles next to it what both plug-ins get from ``plugin_common.bundle``: the pure-Python parts
   of ``websockets`` and ``msgpack`` taken from this Python environment (compiled speed-ups are
   left out; both packages fall back to pure Python), their licence files (``LICENSES/``), and
   the package ``lrclient`` holding the project's ``server/protocol.py``, ``client.py``,
   ``jpegfile.py``, the shared ``errors.py`` and ``launcher.py``, and ``launch.json``: this
   Python, ``--port`` and the checkout, so the plug-in can start ``python -m server`` itself;
4. makes the entry file executable (GIMP only runs executable plug-ins on Linux and macOS).

Restart GIMP afterwards; the command is under Filters > Enhance > Restore JPEG Line Art...
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from plugin_common.bundle import add_launch_arguments, bundle_files, launch_from_arguments
from plugin_common.launcher import LaunchConfig

__all__ = ["PLUGIN_NAME", "PLUGIN_SOURCE", "default_gimp_dir", "install", "main"]

PLUGIN_NAME = "lineart_restore"
#: The plug-in folder in this checkout / installed package.
PLUGIN_SOURCE = Path(__file__).resolve().parent / PLUGIN_NAME
#: Files never copied: caches, compiled extensions and their sources.
_SKIP = re.compile(r"(^__pycache__$|\.pyc$|\.so$|\.pyd$|\.dylib$|\.c$|\.h$)")


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


def install(
    gimp_dir: Path, *, dry_run: bool = False, say: Callable[[str], None] = print, launch: LaunchConfig | None = None
) -> Path:
    """Install the plug-in under ``gimp_dir/plug-ins/lineart_restore`` and return that folder.

    An existing installation there is removed first. With ``dry_run`` nothing is written; the
    actions are only printed. ``launch`` is how the plug-in starts the server (default: this
    Python, port 8765, this checkout).

    Raises:
        SystemExit: a source to copy is missing (not run from a lineart-restore environment).
    """
    gimp_dir = Path(gimp_dir).expanduser()
    dest = gimp_dir / "plug-ins" / PLUGIN_NAME
    entry = PLUGIN_SOURCE / f"{PLUGIN_NAME}.py"
    if not entry.is_file():
        raise SystemExit(f"error: plug-in source {entry} not found")
    launch = launch if launch is not None else LaunchConfig.here()
    files = bundle_files(launch, built_for="GIMP plug-in")
    prefix = "would " if dry_run else ""

    say(f"GIMP 3 profile folder: {gimp_dir}")
    if dest.exists():
        say(f"{prefix}remove previous installation {dest}")
        if not dry_run:
            shutil.rmtree(dest)
    say(f"{prefix}copy plug-in {PLUGIN_SOURCE} -> {dest}")
    if not dry_run:
        shutil.copytree(PLUGIN_SOURCE, dest, ignore=_ignore)
    top = sorted({rel.split("/")[0] for rel, _ in files})
    for line in (dict(files).get("VERSIONS.txt") or b"").decode().splitlines()[2:]:
        say(f"{prefix}bundle {line}")
    say(f"{prefix}write {', '.join(top)} ({len(files)} files) -> {dest}")
    if not dry_run:
        for rel, data in files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    say(f"the plug-in starts the server with: {' '.join(launch.command(launch.port))}")
    target_entry = dest / f"{PLUGIN_NAME}.py"
    say(f"{prefix}make {target_entry} executable")
    if not dry_run:
        mode = target_entry.stat().st_mode
        target_entry.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if not dry_run:
        say(
            "installed. Restart GIMP 3; the command is Filters > Enhance > Restore JPEG Line Art... "
            "(it starts the server when none is running)"
        )
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
    add_launch_arguments(parser)
    args = parser.parse_args(argv)
    gimp_dir = args.gimp_dir if args.gimp_dir is not None else default_gimp_dir()
    install(gimp_dir, dry_run=args.dry_run, launch=launch_from_arguments(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
