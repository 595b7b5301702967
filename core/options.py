"""The restore options, described once: name, type, values, default, label and help of each.

Data only, standard library only (no numpy, no torch, no package-relative import), so that every
front end reads the same table:

* :class:`core.pipeline.RestoreOptions` takes its defaults from it and checks values with
  :func:`problem`;
* ``python -m core restore`` builds its restoration arguments from it (:mod:`core.cli`);
* :mod:`server.protocol` builds ``Options.check`` and the welcome's option schema from it, and
  ``python -m server`` its port, precision and engine choices;
* the Krita and GIMP dialogs take their choices and labels from it. The plug-ins bundle this file
  beside the protocol (``options.py`` in their ``lrclient`` package), and the protocol loads it by
  path (it must not import ``core``, which brings numpy).

Adding an option: add an :class:`Option` to :data:`OPTIONS` (and a field of that name to
``RestoreOptions``, and to the protocol's ``Options`` when clients may set it; tests check that
the three agree).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PORT",
    "ENSEMBLE_SIZES",
    "MASK_METHODS",
    "BACKGROUNDS",
    "PRECISIONS",
    "ENGINES",
    "DEFAULT_THETA",
    "FAST_HELP",
    "PRECISION_HELP",
    "ENGINE_HELP",
    "Option",
    "OPTIONS",
    "BY_NAME",
    "problem",
]

#: The port ``python -m server`` listens on unless told otherwise (clients and plug-ins default to it).
DEFAULT_PORT = 8765
#: Self-ensemble sizes: how many flipped and turned copies the networks run on (1 = off).
ENSEMBLE_SIZES = (1, 2, 4, 8)
#: Mask methods: the learnt mask network, the direct masks of ``core.masks``, or none (plain
#: baseline network, no background forcing).
MASK_METHODS = ("learnt", "otsu", "otsu_d", "agt", "none")
#: What the restored layer's background becomes.
BACKGROUNDS = ("white", "transparent")
#: Inference precisions; ``auto`` picks per device (bf16 on CPUs with native bf16 and on CUDA).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Inference engines; ``auto`` runs a network that runs in fp32 on the CPU with ONNX Runtime.
ENGINES = ("auto", "torch", "onnxruntime")
#: The paper's empirical threshold for the post-process of eq. 1 (8-bit scale): brighter pixels become white.
DEFAULT_THETA = 251

#: Help of ``--fast`` (``python -m core`` and ``python -m server``).
FAST_HELP = (
    "the shipped fast pair (the thinner backbone restore_fast with the default mask network): "
    "about 1.35x faster on a CPU, 0.5-0.8 dB less exact"
)
#: Help of ``--mask-colour-model`` (core, server, evaluate).
MASK_COLOUR_HELP = (
    "mask network for coloured layers only, or 'none' to use the mask network for every layer "
    "(default: the shipped mask_colour.safetensors where it is installed, unless --mask-model is given)"
)
#: Help of ``--colour-model`` (core, server, evaluate).
COLOUR_MODEL_HELP = (
    "backbone for coloured layers only, or 'none' to use the backbone for every layer (default: the "
    "shipped restore_colour.safetensors where it is installed, unless a backbone of your own or --fast is given)"
)
#: Help of ``--inks-model`` (core, server, evaluate).
INKS_MODEL_HELP = (
    "ink network for coloured layers (each pixel's ink colour), or 'none' for the colour stage's own "
    "estimate (default: the shipped colour_inks.safetensors where it is installed)"
)
#: Help of ``--precision``.
PRECISION_HELP = "inference precision (default: auto); auto = bf16 on CPUs with native bf16 and on CUDA, else fp32"
#: Help of ``--engine``.
ENGINE_HELP = (
    "inference engine (default: auto = ONNX Runtime for networks that run in fp32 on the CPU, "
    "where it is faster, else torch)"
)


@dataclass(frozen=True)
class Option:
    """One restore option.

    Attributes:
        name: the field name in ``RestoreOptions`` and the protocol's ``Options``.
        type: ``bool``, ``int``, ``str``, ``path`` (a file name) or ``table`` (64 JPEG steps).
        default: the value when the option is not given.
        label: short words for a dialog.
        help: what it does, for ``--help`` and documentation.
        choices: the allowed values, in the order a dialog lists them (empty: any in range).
        choice_labels: words a dialog shows for each choice, in the order of ``choices``.
        minimum, maximum: inclusive range of an ``int`` (``None``: unbounded that side).
        nullable: ``None`` is allowed (and means "automatic" or "not given").
        flag: the command-line flag of ``python -m core restore`` (``None``: not on the command line;
            a bool flag also has its ``--no-`` form).
        metavar: the command line's name for the value.
        wire: clients may set it in a server request (``server.protocol.Options``).
    """

    name: str
    type: str
    default: object
    label: str
    help: str
    choices: tuple = ()
    choice_labels: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False
    flag: str | None = None
    metavar: str | None = None
    wire: bool = True

    def label_of(self, value: object) -> str:
        """The dialog's words for one of :attr:`choices` (the value itself when unlisted)."""
        for choice, label in zip(self.choices, self.choice_labels):
            if choice == value:
                return label
        return str(value)


#: Every restore option, in the order dialogs and ``--help`` show them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "mask",
        "str",
        "learnt",
        "Line mask",
        "line mask given to the restoration network: learnt (the mask U-Net, default), otsu (Otsu's global "
        "threshold), otsu_d (Otsu dilated by 3x3), agt (adaptive Gaussian threshold), none (no mask: the plain "
        "baseline network, no background forcing)",
        choices=MASK_METHODS,
        choice_labels=(
            "Learnt line mask (recommended)",
            "Otsu threshold",
            "Otsu threshold, dilated",
            "Adaptive Gaussian threshold",
            "No mask (plain restoration)",
        ),
        flag="--mask",
    ),
    Option(
        "threshold",
        "bool",
        True,
        "Snap near-white to white",
        "post-process: pixels brighter than --theta become white (default: on)",
        flag="--threshold",
    ),
    Option(
        "theta",
        "int",
        DEFAULT_THETA,
        "White threshold",
        f"threshold level, on the 8-bit scale (default: {DEFAULT_THETA})",
        minimum=0,
        maximum=255,
        flag="--theta",
        metavar="0-255",
    ),
    Option(
        "qf",
        "int",
        None,
        "JPEG quality",
        "JPEG quality hint for non-blind models; auto reads it from each JPEG's quantisation table (other "
        "files: the model's default; default: auto). Blind models estimate it themselves",
        minimum=1,
        maximum=100,
        nullable=True,
        flag="--qf",
        metavar="1-100|auto",
    ),
    Option(
        "background",
        "str",
        "white",
        "Background",
        "white (default): the restored drawing on white; transparent: black lines with alpha = 1 - gray "
        "(gray input gains an alpha channel, colour input becomes RGBA)",
        choices=BACKGROUNDS,
        choice_labels=("White", "Transparent"),
        flag="--background",
    ),
    Option(
        "return_mask",
        "bool",
        True,
        "Add line mask layer",
        "return the line mask (1 on lines) with the result",
    ),
    Option(
        "tile",
        "int",
        None,
        "Tile size",
        "tile side in pixels (default: chosen from the device's memory)",
        minimum=64,
        nullable=True,
        flag="--tile",
        metavar="PX",
        wire=False,
    ),
    Option(
        "overlap",
        "int",
        None,
        "Tile overlap",
        "overlap between tiles (default: 128, at most a quarter tile)",
        minimum=0,
        nullable=True,
        flag="--overlap",
        metavar="PX",
        wire=False,
    ),
    Option(
        "model",
        "path",
        None,
        "Model",
        "restoration network to use instead of the default one (a weights file; on a server, a name it lists)",
        nullable=True,
    ),
    Option(
        "jpeg_consistency",
        "bool",
        True,
        "Keep to the JPEG",
        "project the result onto what the input's JPEG allows: JPEG files with their own quantisation table "
        "(any encoder), other 8-bit files when their pixels are an unedited JPEG with standard tables or another "
        "known encoder's (mozjpeg, flat, Photoshop-like presets) (default: on)",
        flag="--jpeg-consistency",
    ),
    Option(
        "jpeg_table",
        "table",
        None,
        "JPEG table",
        "the 64 luminance quantization steps (1..65535, natural order) of the JPEG file the layer came from",
        nullable=True,
    ),
    Option(
        "normalize_ink",
        "bool",
        True,
        "Normalize light ink",
        "restore a drawing in flat light ink (light pen, faded scan) stretched to full contrast and scale it "
        "back; drawings with darker lines or grainy pencil are left as they are (default: on)",
        flag="--normalize-ink",
    ),
    Option(
        "enlarged",
        "bool",
        True,
        "Enlarged JPEGs",
        "when the layer looks like a JPEG enlarged after it was saved (its 8x8 blocks grown to 8s and no "
        "detail finer than the JPEG's own pixels), restore it at the JPEG's own size and scale the result "
        "back with the kernel that enlarged it (default: on; docs/wild.md)",
        flag="--enlarged",
    ),
    Option(
        "wild_network",
        "bool",
        True,
        "Resized JPEGs",
        "where a gray 8-bit layer was resized after its JPEG save (its JPEG noise is no longer on an 8-pixel "
        "grid), restore it with the network trained on resized and re-saved JPEGs, and a coloured 8-bit layer "
        "resized after its save (or with no JPEG grid at all) with the colour network trained on resized "
        "JPEGs too (default: on; docs/wild.md)",
        flag="--wild-network",
    ),
    Option(
        "ensemble",
        "int",
        1,
        "Quality",
        "self-ensemble: run the networks on this many flips and turns of the image and average them; up to "
        "that many times slower, more exact (default: 1, off)",
        choices=ENSEMBLE_SIZES,
        # Time factors: docs/benchmarks.md, "The self-ensemble".
        choice_labels=(
            "Standard (one pass)",
            "2 passes, mirrored (about 1.8x the time)",
            "4 passes, mirrored and turned (about 3.3x the time)",
            "8 passes, every flip and turn (about 6.4x the time)",
        ),
        flag="--ensemble",
    ),
)

#: The options by name.
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def problem(name: str, value: object) -> str | None:
    """What is wrong with ``value`` for the option ``name``, in words, or ``None`` when it is valid.

    Types are checked as Python sees them (``int`` also accepts numpy integers, ``bool`` only
    ``True``/``False``); a caller with its own booleans (numpy's) checks those itself.
    """
    opt = BY_NAME[name]
    if value is None:
        return None if opt.nullable else f"{name} must be given, got None"
    nil = " (or None)" if opt.nullable else ""
    if opt.type == "bool":
        return None if isinstance(value, bool) else f"{name} must be true or false, got {value!r}"
    if opt.type == "str" or (opt.type == "int" and opt.choices):
        if opt.type == "int" and not _is_int(value) or value not in opt.choices:
            sep = ";" if opt.type == "str" else ","
            return f"{name} must be one of {', '.join(map(str, opt.choices))}{nil}{sep} got {value!r}"
        return None
    if opt.type == "int":
        lo, hi = opt.minimum, opt.maximum
        if _is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi):
            return None
        within = f"within {lo}..{hi}" if hi is not None else f">= {lo}"
        return f"{name} must be an integer {within}{nil}, got {value!r}"
    if opt.type == "path":
        return (
            None
            if isinstance(value, str) or hasattr(value, "__fspath__")
            else (f"{name} must be a path to a weights file, got {value!r}")
        )
    if opt.type == "table":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            return f"{name} must be a list of 64 quantization steps (natural order), got {value!r}"
        if len(value) != 64:
            return f"{name} must hold 64 quantization steps, got {len(value)}"
        if not all(_is_int(v) and 1 <= v <= 65535 for v in value):
            return f"{name} steps must be integers within 1..65535"
        return None
    raise AssertionError(f"option {name} has an unknown type {opt.type!r}")
