"""Import directions: ``core`` is the bottom layer; the protocol and client stay light enough for the
plug-ins to bundle; the plug-ins reach the engine only through the server.

Checked on the source (every import statement, wherever it is, read with ``ast``) and, where that
is cheap, on what a fresh interpreter has loaded after importing a module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUR_PACKAGES = {"core", "server", "training", "krita_plugin", "gimp_plugin", "plugin_common", "benchmarks", "tests"}
#: What the bundled client files may import besides the standard library (and each other, by the
#: top-level fallback names they use when bundled without a package).
CLIENT_ALLOWED = {"msgpack", "websockets", "protocol", "jpegfile", "options"}
HEAVY = {"torch", "numpy", "cv2", "PIL", "onnxruntime", "spandrel", "safetensors"}


def _imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path`` (relative imports stay in the package)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _sources(*folders: str) -> list[Path]:
    out = []
    for folder in folders:
        out.extend(p for p in sorted((ROOT / folder).rglob("*.py")) if "vendor" not in p.parts)
    assert out, folders
    return out


@pytest.mark.parametrize("path", _sources("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_none_of_our_other_packages(path):
    assert not _imports(path) & (OUR_PACKAGES - {"core"})


CLIENT_FILES = [ROOT / "server" / n for n in ("protocol.py", "client.py", "jpegfile.py")] + [
    ROOT / "core" / "options.py"
]


@pytest.mark.parametrize("path", CLIENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_client_and_option_table_need_only_the_standard_library_msgpack_and_websockets(path):
    extra = _imports(path) - set(sys.stdlib_module_names) - CLIENT_ALLOWED
    assert not extra, f"{path.name} imports {sorted(extra)}"


def test_the_option_table_is_standard_library_only():
    assert _imports(ROOT / "core" / "options.py") <= set(sys.stdlib_module_names)


@pytest.mark.parametrize(
    "path", _sources("krita_plugin", "gimp_plugin", "plugin_common"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_plugins_never_import_the_engine(path):
    assert not _imports(path) & ({"core", "training", "benchmarks"} | HEAVY)


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_importing_the_protocol_and_client_loads_no_engine():
    loaded = _loaded_after("from server import client, protocol; from plugin_common import errors, launcher")
    assert not loaded & (HEAVY | {"core", "training"})


def test_importing_core_loads_none_of_our_other_packages():
    loaded = _loaded_after("import core, core.pipeline, core.cli")
    assert not loaded & (OUR_PACKAGES - {"core"})
