"""The option table (core/options.py) is the one source of every front end's option lists."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core import ensemble, imageio, options
from core.cli import build_parser
from core.errors import InvalidOptionError
from core.ort_engine import ENGINES
from core.pipeline import PRECISIONS, RestoreOptions
from server import protocol

GIMP_DIR = Path(__file__).resolve().parents[1] / "gimp_plugin" / "lineart_restore"


def test_every_option_is_a_field_of_restore_options_with_the_table_default():
    fields = {f.name: f.default for f in dataclasses.fields(RestoreOptions)}
    assert list(fields) == [o.name for o in options.OPTIONS]
    for o in options.OPTIONS:
        assert fields[o.name] == o.default, o.name
        assert not o.choices or o.default in o.choices
        assert len(o.choice_labels) == len(o.choices), o.name


def test_protocol_options_are_the_wire_options_of_the_table():
    fields = {f.name: f.default for f in dataclasses.fields(protocol.Options)}
    assert list(fields) == [o.name for o in options.OPTIONS if o.wire]
    for name, default in fields.items():
        assert (default.value if hasattr(default, "value") else default) == options.BY_NAME[name].default
    assert [m.value for m in protocol.MaskMethod] == list(options.MASK_METHODS)
    assert [b.value for b in protocol.Background] == list(options.BACKGROUNDS)
    assert protocol.ENSEMBLE_SIZES == options.ENSEMBLE_SIZES and protocol.DEFAULT_PORT == options.DEFAULT_PORT


def test_the_protocol_reads_the_same_table_file():
    assert Path(protocol.option_table.__file__).resolve() == Path(options.__file__).resolve()


def test_core_constants_are_the_table():
    assert ensemble.SIZES == options.ENSEMBLE_SIZES
    assert imageio.BACKGROUNDS == options.BACKGROUNDS
    assert PRECISIONS == options.PRECISIONS and ENGINES == options.ENGINES


@pytest.mark.parametrize(
    "name, bad",
    [
        ("mask", "lernt"),
        ("threshold", 1),
        ("theta", 256),
        ("theta", 2.5),
        ("qf", 0),
        ("background", "black"),
        ("tile", 32),
        ("overlap", -1),
        ("ensemble", 3),
        ("ensemble", True),
        ("jpeg_table", [1] * 63),
        ("jpeg_table", [0] * 64),
        ("jpeg_table", "x" * 64),
        ("model", 3),
    ],
)
def test_problem_rejects_what_restore_options_rejects(name, bad):
    msg = options.problem(name, bad)
    assert msg is not None and msg.startswith(name)
    with pytest.raises(InvalidOptionError, match=name):
        RestoreOptions(**{name: bad})


def test_problem_accepts_each_default_and_choice():
    for o in options.OPTIONS:
        assert options.problem(o.name, o.default) is None
        for c in o.choices:
            assert options.problem(o.name, c) is None


def test_command_line_has_one_argument_per_flagged_option():
    _, restore = build_parser()
    dests = {a.dest: a for a in restore._actions}
    for o in options.OPTIONS:
        if o.flag is None:
            continue
        action = dests[o.name]
        assert o.flag in action.option_strings and action.help == o.help
        if o.choices:
            assert list(action.choices) == list(o.choices)


def test_plugin_dialogs_show_the_table_labels(monkeypatch):
    monkeypatch.syspath_prepend(str(GIMP_DIR))
    from lineart_gimp import settings as gimp_settings

    from krita_plugin.lineart_restore import settings as krita_settings

    mask, ensemble_opt = options.BY_NAME["mask"], options.BY_NAME["ensemble"]
    assert krita_settings.MASK_METHODS == mask.choices and krita_settings.ENSEMBLE_SIZES == ensemble_opt.choices
    assert gimp_settings.MASK_CHOICES == tuple(zip(mask.choices, mask.choice_labels))
    assert [gimp_settings.QUALITY_PASSES[nick] for nick, _ in gimp_settings.QUALITY_CHOICES] == list(
        ensemble_opt.choices
    )
    assert [label for _, label in gimp_settings.QUALITY_CHOICES] == list(ensemble_opt.choice_labels)
    if _has_qt():
        from krita_plugin.lineart_restore import ui

        assert list(ui.MASK_LABELS.values()) == list(mask.choice_labels)
        assert list(ui.QUALITY_LABELS.values()) == list(ensemble_opt.choice_labels)


def _has_qt() -> bool:
    try:
        import PyQt5.QtWidgets  # noqa: F401
    except ImportError:
        return False
    return True
