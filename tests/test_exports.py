"""The public API of ``core``: what ``core.__all__`` promises, and the error tree's codes."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import core
import core.errors

#: Modules whose own ``__all__`` is re-exported by ``core`` (minus the names listed as internal).
REEXPORTED = {
    "core.equations": set(),
    "core.errors": set(),
    "core.masks": {"to_uint8"},  # a conversion helper, public in core.masks only
    "core.metrics": set(),
}


def test_all_names_exist_and_are_unique():
    assert len(core.__all__) == len(set(core.__all__))
    for name in core.__all__:
        assert hasattr(core, name), f"core.__all__ lists {name!r} but core has no such attribute"


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from core import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(core.__all__)


@pytest.mark.parametrize("module_name", sorted(REEXPORTED))
def test_submodule_api_is_reexported(module_name):
    module = importlib.import_module(module_name)
    own = set(module.__all__) - REEXPORTED[module_name]
    missing = own - set(core.__all__)
    assert not missing, f"{module_name} exports {sorted(missing)} but core.__all__ does not"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ lists a missing name {name!r}"
    for name in own:
        assert getattr(core, name) is getattr(module, name)


def test_public_functions_are_documented():
    for name in core.__all__:
        obj = getattr(core, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"core.{name} has no docstring"


def test_version_matches_the_package_metadata():
    from importlib.metadata import version

    assert core.__version__ == version("lineart-restore")


def test_error_tree_and_codes():
    errors = [getattr(core.errors, n) for n in core.errors.__all__]
    codes = [e.code for e in errors]
    assert len(codes) == len(set(codes)), "error codes must be unique"
    for e in errors:
        assert issubclass(e, core.RestoreError)
    assert {e.__name__: e.code for e in errors} == {
        "RestoreError": "restore_error",
        "InvalidImageError": "invalid_image",
        "InvalidOptionError": "invalid_option",
        "WeightsError": "bad_weights",
        "UnsupportedModelError": "unsupported_model",
        "OutOfMemoryError": "out_of_memory",
        "CancelledError": "cancelled",
    }
    assert issubclass(core.InvalidImageError, ValueError)
    assert issubclass(core.InvalidOptionError, ValueError)
    assert issubclass(core.UnsupportedModelError, core.WeightsError)


def test_importing_core_does_not_import_torch():
    # The package docstring promises a cheap import: the networks load torch only when used.
    code = "import sys, core; sys.exit(1 if 'torch' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"import core pulled in torch\n{result.stderr}"
