"""The restore pipeline: one entry point used by the CLI, the server and the plug-ins.

    >>> from core.pipeline import Restorer, RestoreOptions
    >>> r = Restorer.default()                      # shipped weights, CUDA if present else CPU
    >>> res = r.restore(layer, RestoreOptions(mask="learnt", background="transparent"))
    >>> res.image, res.mask, res.qf_estimate, res.timings, res.notes

Steps of :meth:`Restorer.restore`:

1. The layer (L/LA/RGB/RGBA, uint8/uint16) becomes one gray float plane in ``[0, 1]``
   (:func:`core.imageio.to_gray_float`: alpha composited on white, colour without colour (R = G = B
   within a few levels) -> BT.601 luminance, 16-bit converted directly without an 8-bit step). A
   coloured layer becomes its darkness plane and per-pixel ink colours instead (:mod:`core.colour`). A drawing in flat light ink is stretched to
   full contrast for the networks (``normalize_ink``, :mod:`core.ink`); any other is untouched.
2. The line mask: ``learnt`` runs the mask U-Net tile by tile, blending the *logit difference*
   (line minus background) of overlapping tiles and thresholding it at 0 after blending, which is
   the argmax of the blended logits; ``otsu`` / ``otsu_d`` / ``agt`` are the direct masks of
   :mod:`core.masks` computed on the whole image; ``none`` uses no mask.
3. The backbone runs tile by tile: the framework model on (image, mask), or for ``none`` the
   baseline model on the image alone. A stretched image is scaled back to its own ink, and the
   output is clamped to ``[0, 1]``. A framework tile
   with no line pixel is not run at all (eq. 2 will make it white anyway).
4. Framework mode: eq. 2, :func:`core.equations.compose` (background forced to white). Then,
   if enabled, eq. 1, :func:`core.equations.threshold` with ``theta``.
5. JPEG consistency (``jpeg_consistency``, 8-bit layers): when the layer's pixels are an unedited
   decoding of a JPEG with standard IJG tables, the result is projected, block by block, onto
   the coefficients that JPEG allows, alternating with eq. 2's white paper
   (:mod:`core.jpeg_consistency`); then eq. 1 again. Otherwise nothing changes.
6. The plane goes back to the caller's layout and depth (:func:`core.imageio.from_gray_float`),
   with a white or transparent background; a coloured layer's through its ink colours
   (:func:`core.colour.to_layer`; step 5 projects its luminance onto the luminance its JPEG stored,
   :func:`core.colour.jpeg_luma`, and moves the line plane to match, ink colours kept).

Tiles start on multiples of the models' down-sampling factor (and of 8, the JPEG grid), overlap
and are cross-faded (:mod:`core.tiling`), so any image size runs in bounded memory. On CPU the
restoration backbone runs in ``channels_last`` with bfloat16 autocast where the processor has native
bf16 (``avx512_bf16``/AMX), else in float32; on CUDA in bfloat16 (float16 where bf16 is missing).
The mask network follows the same rule by default (``mask_precision``; see ``Restorer``).
A network that runs in float32 on the CPU is run by ONNX Runtime when it exports (``engine``,
:mod:`core.ort_engine`): on an AVX2-only CPU the whole pipeline ran 1.59x faster than with torch
(docs/pipeline.md, *Benchmark*).
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from . import colour, ensemble, ink, jpeg_consistency, resample
from . import masks as direct_masks
from . import options as option_table
from .device import PRECISIONS, cpu_has_native_bf16, resolve_device, resolve_precision
from .equations import DEFAULT_THETA, compose, threshold
from .errors import InvalidOptionError, OutOfMemoryError, WeightsError
from .imageio import BACKGROUNDS, GrayPlane, from_gray_float, to_gray_float
from .masknet import mask_with_rim
from .options import MASK_METHODS
from .ort_engine import ENGINES
from .runners import Runner as _Runner
from .runners import describe as _describe
from .runners import glue_threads as _glue_threads
from .runners import is_oom as _is_oom
from .runners import load_weights as _load
from .runners import model_kind as _kind
from .steps import step, unlocked_at_steps
from .tiling import (
    MIN_TILE,
    CancelFlag,
    check_cancel,
    choose_tile,
    default_overlap,
    densest_window,
    plan_tiles,
    run_tiled,
)

__all__ = [
    "ENGINES",
    "MASK_METHODS",
    "PRECISIONS",
    "MODELS_DIR",
    "DEFAULT_FILES",
    "FAST_FILES",
    "COLOUR_MASK_FILE",
    "COLOUR_INKS_FILE",
    "COLOUR_RESTORE_FILE",
    "colour_mask_path",
    "colour_inks_path",
    "colour_files",
    "colour_restore_path",
    "WILD_FILES",
    "wild_files",
    "DEFAULT_QF",
    "NetworkPlanes",
    "network_planes",
    "RestoreOptions",
    "RestoreResult",
    "Restorer",
    "resolve_device",
    "resolve_precision",
    "cpu_has_native_bf16",
]

#: Where the shipped weights live.
MODELS_DIR = Path(__file__).resolve().parent / "models"
#: Role -> shipped file name. The mask network is the thin one (``mask_fast``, cut out of
#: ``mask_default`` and fine-tuned): with the default backbone it scores within 0.03 dB of the
#: wider ``mask_default`` on val and kanji (0.05-0.11 dB less on flat light lines) and does 10 k
#: multiply-adds per pixel instead of 36 k (docs/models.md). ``mask_default`` stays shipped as the
#: cut's origin and the backbones' training mask (``--mask-model`` selects it).
DEFAULT_FILES = {
    "mask": "mask_fast.safetensors",
    "restore": "restore_default.safetensors",
    "baseline": "restore_baseline.safetensors",
}
#: Role -> shipped file name of the fast pair: the thin mask network and the thinner backbone cut
#: out of the default one and fine-tuned (``python -m training shrink``), faster on a CPU and
#: less exact.
FAST_FILES = {**DEFAULT_FILES, "restore": "restore_fast.safetensors"}
#: The colour layers' own mask network (the default mask fine-tuned on coloured RGB JPEGs,
#: ``python -m training mask --colour``; docs/colour.md): optional, used for colour layers only and
#: only when the file is there (gray and neutral layers keep :data:`DEFAULT_FILES`' mask).
COLOUR_MASK_FILE = "mask_colour.safetensors"
#: The colour layers' own backbone (the default backbone fine-tuned on the line plane the colour
#: stage makes of coloured RGB JPEGs, ``python -m training restore --colour``; docs/colour.md):
#: optional like :data:`COLOUR_MASK_FILE`, used for colour layers only, with the default backbone
#: only (not the fast pair's, nor a backbone given by the caller).
COLOUR_RESTORE_FILE = "restore_colour.safetensors"
#: The ink network (:mod:`core.inknet`, ``python -m training inks``; docs/colour.md): corrects each
#: pixel's ink colour on coloured layers before they are turned back into colour; optional, used
#: with any backbone (it reads the JPEG, not the restoration) where the file is there.
COLOUR_INKS_FILE = "colour_inks.safetensors"
#: ``Restorer.from_files`` keyword -> shipped file, loaded with the default files when it is there:
#: the framework backbone and the mask network fine-tuned on re-saved, resized and cropped JPEGs
#: (``training.degrade``), which the ``wild_network`` option uses on layers resized after
#: compression (docs/wild.md); and the colour layers' backbone fine-tuned on coloured JPEGs at their
#: size and resized after compression, which the same option uses on colour layers whose luminance
#: holds no JPEG grid (docs/wild.md, *Colour layers with no JPEG grid*).
WILD_FILES = {
    "wild": "restore_wild.safetensors",
    "wild_mask": "mask_wild.safetensors",
    "wild_colour": "restore_colour_wild.safetensors",
}


def wild_files(fast: bool = False) -> dict[str, Path | None]:
    """:meth:`Restorer.from_files` keyword -> the shipped :data:`WILD_FILES` file, or None where it
    is not there (always None with the fast pair, whose backbone they do not go with)."""
    paths = {key: MODELS_DIR / name for key, name in WILD_FILES.items()}
    return {key: path if not fast and path.is_file() else None for key, path in paths.items()}


#: QF assumed for a non-blind model when the caller gives none (a note says so in the result).
DEFAULT_QF = 50
#: Side of the window on which a large JPEG layer that may have been resized before its last save
#: is restored first, to decide which pair restores the whole layer (:meth:`Restorer._probe`), and
#: how many such windows a layer must hold for the probe to be worth its cost.
PROBE_SIDE = 384
PROBE_MIN_WINDOWS = 2
#: RMS difference (gray levels) between the wild pair's and the default pair's restorations of a
#: layer whose last JPEG did not make its damage, above which the wild pair's is kept although the
#: layer keeps a strong 8-pixel grid, where no re-save fit can be made
#: (:func:`core.jpeg_consistency.resave_fit` decides everywhere else): on ``lineart/train`` crops re-saved at their size the two
#: pairs were at most 4.4 levels apart (125 crops; 4.53 on one of them with the stage-12 wild
#: backbone, whose result there was the better one), on JPEGs enlarged and saved again, where the
#: default pair fell below the input, 4.6 or more (``python -m benchmarks.bench_wild --disagreement
#: 256 --images 0 --every 2 --families double_aligned double_shifted resize_then_jpeg``, docs/wild.md).
WILD_DISAGREEMENT = 4.5
#: On a layer taken for resized, the pixels next to a line (8-neighbours of the mask) whose line
#: logit falls short of the paper logit by less than this keep the wild backbone's value in eq. 2
#: instead of white: a resize spreads every edge into a faint rim that the mask network mostly
#: calls paper, at a line probability of 0.1-0.4 (a one-off look at val JPEGs shrunk). Gray
#: layers (the wild mask network) and colour layers (the colour mask network, whose rim logits lie
#: lower) have a margin each, calibrated on ``lineart/train`` crops the pipeline restored with a
#: wild backbone (``python -m benchmarks.bench_wild --rim 256 --images 0 --every 4``, docs/wild.md).
RIM_MARGIN = 1.5
RIM_MARGIN_COLOUR = 4.0
#: On colour layers a rim pixel is kept only where the backbone makes it darker than this (the line
#: plane, 1 = paper): light-ink JPEGs at their own size whose grid the search misses take the colour
#: wild backbone too, and their rim is paper with a tint of the ink (on the training crops the
#: resized layers' gain was the same to 0.02 dB with and without it; ``--rim`` as above).
RIM_LEVEL_COLOUR = 0.95
#: Rows per band in the final compose/threshold step.
_FINISH_ROWS = 512


# ------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class RestoreOptions:
    """What to do with one image. Validated on construction (raises ``InvalidOptionError``).

    Attributes:
        mask: ``learnt``, ``otsu``, ``otsu_d``, ``agt`` or ``none`` (plain baseline backbone).
        threshold: apply the eq. 1 post-process (pixels brighter than ``theta`` become white).
        theta: threshold on the 8-bit scale, 0..255 (used for 16-bit too, scaled).
        qf: JPEG quality 1..100 for non-blind models (a QF-map backbone or mask net); blind
            FBCNN models also accept it as an override of their own estimate. ``None``: let a
            blind model estimate it, or assume :data:`DEFAULT_QF` for a non-blind one. On a layer
            that ``normalize_ink`` stretches, the models get the quality of the stretched steps
            (:func:`core.ink.stretched_qf`).
        background: ``white`` (the paper's output) or ``transparent`` (lines become alpha).
        return_mask: include the (H, W) uint8 0/1 mask in the result.
        tile: tile side in pixels (>= 64), ``None`` to choose from the device's memory.
        overlap: overlap between tiles in pixels, ``None`` for the default (capped at a quarter
            of the tile).
        model: a backbone weights file (our ``.safetensors``, or an official ``.pth``) to use
            instead of the Restorer's own; its mode must suit ``mask`` (baseline for ``none``,
            framework otherwise).
        jpeg_consistency: when the 8-bit layer still holds an unedited JPEG decoding (standard
            IJG tables or another encoder's known ones, found in the pixels by
            :func:`core.jpeg_consistency.find_jpeg_grid`),
            project the result onto what that JPEG allows (see :mod:`core.jpeg_consistency`);
            anything else is left as the networks made it, and so is a layer whose damage that
            JPEG did not make (re-saved from a coarser JPEG, resized between saves: the notes
            say so; docs/wild.md).
        jpeg_table: the 64 luminance quantization steps (natural order) of the JPEG file the layer
            was decoded from, when the caller has the file (the command line reads them): the
            consistency step then uses that table, whatever encoder wrote it, instead of
            searching the IJG tables. It is still checked against the pixels, so a layer edited
            after decoding is left alone. ``None``: search.
        normalize_ink: when the layer is drawn in flat light ink (a light pen, a faded scan: the
            most common dark level is light and few pixels are darker), run the networks on it
            stretched to full contrast and scale the result back (:mod:`core.ink`). Layers with
            darker lines, grainy pencil or hairlines only are not changed by it.
        enlarged: when :func:`core.resample.find_enlargement` finds that the 8-bit layer is a JPEG
            enlarged after its save, restore it resampled to the JPEG's own size and resample the
            result back (docs/wild.md). On by default: screentones and hatching, whose detail is
            finer than a JPEG's pixels, are not taken for enlarged blocks.
        wild_network: when the Restorer holds a second framework backbone trained on re-saved,
            resized and cropped JPEGs (``wild``, :data:`WILD_FILES`), use it on gray 8-bit layers
            resized after compression: no JPEG table is found in the pixels and their JPEG noise
            is not on an 8-pixel grid (:func:`core.resample.looks_resized`), or the restoration lies
            outside the found JPEG's quantization steps (the check of the ``jpeg_consistency`` step)
            and no re-save at the layer's size explains the damage
            (:func:`core.jpeg_consistency.resave_fit`); both made on a :data:`PROBE_SIDE` window
            first where the layer holds two and its grid is weak, else on the whole layer, which is
            then restored a second time. Where no re-save can be fitted (no coarser quality to try),
            a weak grid decides, or both pairs restore the layer and the wild pair's result is kept
            where the two lie more than :data:`WILD_DISAGREEMENT` apart. Single JPEGs and re-saves
            at the layer's size keep the default backbone. On 8-bit colour layers whose luminance holds
            no JPEG grid (:func:`core.jpeg_consistency.find_jpeg_grid` on
            :func:`core.colour.jpeg_luma`, before the networks run), the colour backbone fine-tuned
            on resized coloured JPEGs too (``wild_colour``) is used instead of the colour backbone;
            where it holds one but the consistency step's check finds that its last JPEG did not make
            the damage and no re-save explains it (the re-save fit on the luminance), the layer is
            restored again with it.
            No effect with ``model`` or ``mask="none"``.
        ensemble: self-ensemble size, 1 (off), 2, 4 or 8: run the networks on that many flips and
            turns of each tile and average the results (:mod:`core.ensemble`); up to that many
            times slower, and more exact where the JPEG damage is mild (docs/benchmarks.md).
    """

    # Defaults and checks come from core.options (one table for every front end); a test checks
    # that these fields are the table's options.
    mask: str = option_table.BY_NAME["mask"].default
    threshold: bool = option_table.BY_NAME["threshold"].default
    theta: int = option_table.BY_NAME["theta"].default
    qf: int | None = option_table.BY_NAME["qf"].default
    background: str = option_table.BY_NAME["background"].default
    return_mask: bool = option_table.BY_NAME["return_mask"].default
    tile: int | None = option_table.BY_NAME["tile"].default
    overlap: int | None = option_table.BY_NAME["overlap"].default
    model: str | None = option_table.BY_NAME["model"].default
    jpeg_consistency: bool = option_table.BY_NAME["jpeg_consistency"].default
    jpeg_table: tuple[int, ...] | None = option_table.BY_NAME["jpeg_table"].default
    normalize_ink: bool = option_table.BY_NAME["normalize_ink"].default
    enlarged: bool = option_table.BY_NAME["enlarged"].default
    wild_network: bool = option_table.BY_NAME["wild_network"].default
    ensemble: int = option_table.BY_NAME["ensemble"].default

    def __post_init__(self) -> None:
        for opt in option_table.OPTIONS:
            value = getattr(self, opt.name)
            if opt.type == "bool" and isinstance(value, np.bool_):
                value = bool(value)
            problem = option_table.problem(opt.name, value)
            if problem is not None:
                raise InvalidOptionError(problem)
        if self.jpeg_table is not None:
            object.__setattr__(self, "jpeg_table", tuple(int(v) for v in self.jpeg_table))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RestoreOptions:
        """Build from a mapping (e.g. a server request), rejecting unknown keys."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise InvalidOptionError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)


@dataclass
class RestoreResult:
    """The outcome of :meth:`Restorer.restore`.

    Attributes:
        image: the restored layer, same dtype as the input. White background: same layout as the
            input (alpha, if any, opaque). Transparent background: black lines whose alpha is
            ``white - gray``; gray input -> (H, W, 2), colour input -> (H, W, 4) (a coloured
            layer's strokes in their ink colour, alpha the coverage: :mod:`core.colour`).
        mask: (H, W) uint8, 1 on lines, the mask given to the backbone; ``None`` for ``mask="none"``
            or when ``return_mask`` is off.
        qf_estimate: the JPEG quality (0-100) a blind FBCNN backbone estimated, else ``None``.
        jpeg_quality: the IJG quality found in the layer's pixels and used to make the result
            consistent with its JPEG (``jpeg_consistency``; for a file's own non-IJG table, the
            nearest IJG quality), else ``None``.
        timings: seconds per step (``prepare``, ``mask``, ``restore``, ``finish``, ``total``; on a colour
            layer with the ink network also ``inks``, which ``prepare`` includes).
        notes: remarks for people (light ink stretched, assumed QF...).
        tile: the tile side used; ``tiles``: how many tiles the backbone pass ran.
    """

    image: np.ndarray
    mask: np.ndarray | None
    qf_estimate: float | None
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    tile: int = 0
    tiles: int = 0
    jpeg_quality: int | None = None


# ------------------------------------------------------------------------------------ restorer


def _colour_file(shipped_name: str, choice: str | os.PathLike | None, given: bool) -> Path | None:
    if choice is not None:
        return None if str(choice).lower() == "none" else Path(choice)
    shipped = MODELS_DIR / shipped_name
    return shipped if shipped.is_file() and not given else None


def colour_mask_path(choice: str | os.PathLike | None, mask_given: bool) -> Path | None:
    """The colour layers' mask file a command line asks for (``--mask-colour-model``): ``none``
    -> none (the mask network for every layer); a path -> that file; not given -> the shipped
    :data:`COLOUR_MASK_FILE` where it is there, unless ``mask_given`` (a ``--mask-model`` of the
    caller's own then masks every layer)."""
    return _colour_file(COLOUR_MASK_FILE, choice, mask_given)


def colour_restore_path(choice: str | os.PathLike | None, restore_given: bool) -> Path | None:
    """The colour layers' backbone file a command line asks for (``--colour-model``), as
    :func:`colour_mask_path` does: ``none`` -> none (the backbone for every layer); a path -> that
    file; not given -> the shipped :data:`COLOUR_RESTORE_FILE` where it is there, unless
    ``restore_given`` (a backbone of the caller's own, or the fast pair's, restores every layer)."""
    return _colour_file(COLOUR_RESTORE_FILE, choice, restore_given)


def colour_inks_path(choice: str | os.PathLike | None) -> Path | None:
    """The ink network's file a command line asks for (``--inks-model``): ``none`` -> none (the
    hand-made ink colours of :func:`core.colour.prepare`); a path -> that file; not given -> the
    shipped :data:`COLOUR_INKS_FILE` where it is there."""
    return _colour_file(COLOUR_INKS_FILE, choice, False)


def colour_files(
    mask_colour: str | os.PathLike | None = None,
    restore_colour: str | os.PathLike | None = None,
    inks: str | os.PathLike | None = None,
    *,
    mask_given: bool = False,
    restore_given: bool = False,
) -> dict[str, Path | None]:
    """The colour layers' own files a command line asks for (``--mask-colour-model``,
    ``--colour-model``, ``--inks-model``: a file, ``none`` or not given), as
    :meth:`Restorer.from_files` keywords: :func:`colour_mask_path`, :func:`colour_restore_path` and
    :func:`colour_inks_path` in one place."""
    return {
        "mask_colour": colour_mask_path(mask_colour, mask_given),
        "restore_colour": colour_restore_path(restore_colour, restore_given),
        "colour_inks": colour_inks_path(inks),
    }


@dataclass
class NetworkPlanes:
    """What the networks see of a layer (:func:`network_planes`).

    ``plane``: the layer's gray plane and layout (a colour layer's line plane, :mod:`core.colour`);
    ``x``: the (1, 1, H, W) plane the backbone sees (stretched when ``ink_k != 1``); ``mask_x``:
    the plane the mask network sees when it is not ``x`` (a colour layer's, without the stretched
    JPEG noise), else ``None``; ``direction``: a colour layer's ink directions, ``None`` for a gray
    or neutral one; ``ink_k``: the light-ink stretch (:mod:`core.ink`), 1 when none.
    """

    plane: GrayPlane
    x: torch.Tensor
    mask_x: torch.Tensor | None
    direction: np.ndarray | None
    ink_k: float

    def mask_input(self, colour_mask: bool = False) -> torch.Tensor:
        """The (1, 1, H, W) plane a mask network is given. The gray-trained mask network gets a
        colour layer's mask plane ``mask_x``; the colour layers' own mask network (``colour_mask``,
        :data:`COLOUR_MASK_FILE`, trained on this very plane by ``python -m training mask
        --colour``) gets the full line plane ``x``: the floors of ``mask_x`` also erase a light
        ink's faint strokes, which a network trained on colour can tell from the stretched noise."""
        return self.x if (self.mask_x is None or colour_mask) else self.mask_x


def network_planes(image: np.ndarray, normalize_ink: bool = True) -> NetworkPlanes:
    """A layer -> the planes the networks are given, as :meth:`Restorer.restore` makes them: a gray
    or neutral layer's gray plane, or a coloured layer's line and mask planes (:mod:`core.colour`),
    stretched to full contrast when ``normalize_ink`` finds flat light ink (:mod:`core.ink`).
    Mask training on coloured JPEGs (``python -m training mask --colour``) calls this too, so that
    the network is trained on exactly the plane it will see."""
    direction = mask_x = None
    if colour.is_neutral(image):
        plane = to_gray_float(image)
    else:
        cplane = colour.prepare(image)
        plane = GrayPlane(cplane.gray, cplane.layout, cplane.dtype, cplane.notes)
        direction, mask_gray = cplane.direction, cplane.mask_gray
        del cplane
    h, w = plane.gray.shape
    x = torch.from_numpy(plane.gray).view(1, 1, h, w)
    if direction is not None:
        mask_x = torch.from_numpy(mask_gray).view(1, 1, h, w)
    ink_k = ink.stretch_factor(plane.gray) if normalize_ink else 1.0
    if ink_k != 1.0:
        x = ink.stretch(x, ink_k)
        mask_x = ink.stretch(mask_x, ink_k) if mask_x is not None else None
    return NetworkPlanes(plane, x, mask_x, direction, ink_k)


@dataclass
class _Job:
    """One restore's inputs and running state, handed from :meth:`Restorer._restore` to the passes
    (which may run more than once, with smaller tiles, after running out of memory).

    ``x``: the (1, 1, H, W) plane the networks see (stretched when ``ink_k != 1``); ``plane``: the
    layer's gray plane and layout; ``direction``: the ink directions of a colour layer
    (:mod:`core.colour`), ``None`` for a gray or neutral one; ``mask_x``: the plane the mask network
    sees when it is not ``x`` (a colour layer's, without the stretched JPEG noise); ``tick``: called after every tile,
    of ``total[0]`` tiles in all (grown when a pass is added);
    ``notes``/``timings``: filled in as the passes run; ``t0``: when the restore began.
    """

    x: torch.Tensor
    plane: GrayPlane
    opts: RestoreOptions
    backbone: _Runner
    mask_runner: _Runner | None
    qf_in: float | None
    tick: Callable[[int], None]
    cancel: CancelFlag
    notes: list[str]
    timings: dict[str, float]
    t0: float
    progress: Callable[[float], None] | None
    ink_k: float
    direction: np.ndarray | None = None
    mask_x: torch.Tensor | None = None
    total: list[int] = field(default_factory=lambda: [0])
    #: a coloured layer (the caller's array, not a copy) for the JPEG-consistency step on the
    #: luminance its JPEG stored (:func:`core.colour.jpeg_luma`) and the choice of its backbone;
    #: ``None`` for gray layers
    colour_layer: np.ndarray | None = None
    #: ``(y8, bounds)``: that luminance, where it was computed before the networks ran (to look for
    #: its JPEG grid, the ``wild_colour`` backbone being a choice), for the consistency step to reuse
    colour_search: tuple | None = None
    #: ``(y8, luma, grid)``: where the consistency step found that the layer's last JPEG did not
    #: make its damage, that luminance, the restoration's luminance (0..1) and the grid
    colour_skipped: tuple | None = None


class Restorer:
    """Holds the loaded models and restores images with them.

    Args:
        mask_model: a ``MaskUNet`` for ``mask="learnt"`` (or ``None``).
        restore_model: a framework-mode backbone for the mask methods (or ``None``).
        baseline_model: a baseline-mode backbone for ``mask="none"`` (or ``None``).
        wild_model: a framework-mode backbone for layers that are not one JPEG at their own size
            (the ``wild_network`` option), or ``None``.
        wild_mask_model: the ``MaskUNet`` that goes with ``wild_model`` (else the default mask
            network's mask, grown by a pixel where no JPEG table is left), or ``None``.
        wild_colour_model: a framework backbone for coloured 8-bit layers whose luminance holds no
            JPEG grid (role ``wild_colour``, ``WILD_FILES``), where the colour backbone would run;
            ``None``: the colour backbone for every coloured layer.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: precision of the restoration backbones: ``auto``, ``fp32``, ``bf16`` or
            ``fp16`` (CUDA only).
        mask_precision: precision of the mask network; ``None`` (default): the same as ``precision``.
            In bf16 the pixels whose two logits are nearly equal may flip (tens to a few hundred
            per million against fp32), in both directions: on the validation sets the mask mIoU and
            the output PSNR moved by at most 0.0001 and 0.003 dB (``benchmarks/mask_precision.py``),
            while the mask network ran about twice as fast. ``fp32`` gives the exact fp32 decision.
        channels_last: run the models in ``channels_last`` memory format (faster with oneDNN).
        engine: ``auto`` (default): a model that runs in float32 on the CPU is run by ONNX Runtime
            (:mod:`core.ort_engine`) if it exports and agrees with torch on a probe, else by torch;
            ``torch``: always torch; ``onnxruntime``: insist on it (CPU only; ``auto`` precision
            then means fp32), raising ``InvalidOptionError`` where a model cannot run there.
        names: role -> label shown by :meth:`info` (file names).
        mask_colour_model: a ``MaskUNet`` for the learnt mask of coloured layers only (role
            ``mask_colour``, :data:`COLOUR_MASK_FILE`); ``None``: ``mask_model`` for every layer.
        restore_colour_model: a framework backbone for coloured layers only, where the default
            ``restore_model`` would run (role ``restore_colour``, :data:`COLOUR_RESTORE_FILE`);
            ``None``: ``restore_model`` for every layer.
        colour_inks_model: an :class:`core.inknet.InkNet` correcting coloured layers' ink colours
            (role ``colour_inks``, :data:`COLOUR_INKS_FILE`); ``None``: the colour stage's own
            estimate (:func:`core.colour.prepare`).

    A Restorer may be shared between threads; restorations run one at a time.
    """

    def __init__(
        self,
        mask_model: torch.nn.Module | None = None,
        restore_model: torch.nn.Module | None = None,
        baseline_model: torch.nn.Module | None = None,
        *,
        wild_model: torch.nn.Module | None = None,
        wild_mask_model: torch.nn.Module | None = None,
        wild_colour_model: torch.nn.Module | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        mask_precision: str | None = None,
        channels_last: bool = True,
        engine: str = "auto",
        names: dict[str, str] | None = None,
        mask_colour_model: torch.nn.Module | None = None,
        restore_colour_model: torch.nn.Module | None = None,
        colour_inks_model: torch.nn.Module | None = None,
    ):
        if engine not in ENGINES:
            raise InvalidOptionError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
        self.device = resolve_device(device)
        if engine == "onnxruntime":
            # ONNX Runtime runs float32: "auto" must not pick bf16 for it.
            precision = "fp32" if precision == "auto" else precision
            mask_precision = "fp32" if mask_precision == "auto" else mask_precision
        self.engine = engine
        self.precision = resolve_precision(precision, self.device)
        self.mask_precision = resolve_precision(precision if mask_precision is None else mask_precision, self.device)
        self.channels_last = bool(channels_last)
        names = names or {}
        self._lock = threading.Lock()
        self._runners: dict[str, _Runner] = {}
        self._extra: dict[str, _Runner] = {}
        for role, model, want in (
            ("mask", mask_model, "mask"),
            ("restore", restore_model, "framework"),
            ("baseline", baseline_model, "baseline"),
            ("mask_colour", mask_colour_model, "mask"),
            ("restore_colour", restore_colour_model, "framework"),
            ("wild", wild_model, "framework"),
            ("mask_wild", wild_mask_model, "mask"),
            ("wild_colour", wild_colour_model, "framework"),
            ("colour_inks", colour_inks_model, "inks"),
        ):
            if model is None:
                continue
            self._check_role(model, role, want)
            prec = self.mask_precision if want == "mask" else self.precision
            # The ink network is small and runs once per layer: always torch (no ONNX export).
            engine = "torch" if want == "inks" else self.engine
            self._runners[role] = _Runner(model, names.get(role, role), self.device, prec, self.channels_last, engine)

    @staticmethod
    def _check_role(model: torch.nn.Module, role: str, want: str) -> None:
        kind = _kind(model)
        if want == "inks" or kind == "inks":
            if kind != want:
                raise WeightsError(
                    f"the {role} model must be "
                    + ("the ink network" if want == "inks" else f"a {want} network, not the ink network")
                )
            return
        if want == "mask":
            if kind != "mask":
                raise WeightsError(
                    f"the {role} model must be a mask network, got a {getattr(model, 'arch', kind)} backbone"
                )
            return
        if kind != "backbone":
            raise WeightsError(f"the {role} model must be a restoration backbone, got a mask network")
        if getattr(model, "mode", None) != want:
            raise WeightsError(
                f"the {role} model must be a {want}-mode backbone, got mode {getattr(model, 'mode', '?')!r}"
            )

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_files(
        cls,
        mask: str | os.PathLike | None = None,
        restore: str | os.PathLike | None = None,
        baseline: str | os.PathLike | None = None,
        *,
        wild: str | os.PathLike | None = None,
        wild_mask: str | os.PathLike | None = None,
        wild_colour: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        mask_precision: str | None = None,
        engine: str = "auto",
        mask_colour: str | os.PathLike | None = None,
        restore_colour: str | os.PathLike | None = None,
        colour_inks: str | os.PathLike | None = None,
    ) -> Restorer:
        """Load models from weights files (our ``.safetensors``; ``baseline`` may also be an
        official ``.pth`` checkpoint). Any of them may be ``None`` if its methods are not used;
        ``mask_colour`` and ``restore_colour`` (optional) are the mask network and the backbone
        for coloured layers only, ``colour_inks`` their ink network; ``wild`` and
        ``wild_mask`` are the backbone and mask network of the ``wild_network`` option, and
        ``wild_colour`` its backbone for coloured layers with no JPEG grid.

        Raises:
            WeightsError: a file is missing, unreadable, or holds a model of the wrong role.
        """
        loaded: dict[str, torch.nn.Module | None] = {}
        names = {}
        roles = (
            ("mask", mask),
            ("restore", restore),
            ("baseline", baseline),
            ("mask_colour", mask_colour),
            ("restore_colour", restore_colour),
            ("wild", wild),
            ("mask_wild", wild_mask),
            ("wild_colour", wild_colour),
            ("colour_inks", colour_inks),
        )
        for role, path in roles:
            if path is None:
                loaded[role] = None
                continue
            loaded[role] = _load(path, role)
            names[role] = Path(path).name
        return cls(
            loaded["mask"],
            loaded["restore"],
            loaded["baseline"],
            wild_model=loaded["wild"],
            wild_mask_model=loaded["mask_wild"],
            wild_colour_model=loaded["wild_colour"],
            device=device,
            precision=precision,
            mask_precision=mask_precision,
            engine=engine,
            names=names,
            mask_colour_model=loaded["mask_colour"],
            restore_colour_model=loaded["restore_colour"],
            colour_inks_model=loaded["colour_inks"],
        )

    @classmethod
    def default(
        cls,
        device: str | torch.device = "auto",
        precision: str = "auto",
        mask_precision: str | None = None,
        engine: str = "auto",
        fast: bool = False,
    ) -> Restorer:
        """The shipped models from ``core/models/``: :data:`DEFAULT_FILES`, or with ``fast`` the
        thinner pair :data:`FAST_FILES`, and the colour layers' mask :data:`COLOUR_MASK_FILE`,
        ink network :data:`COLOUR_INKS_FILE` and (not with ``fast``) backbone
        :data:`COLOUR_RESTORE_FILE` where they are there, and
        :data:`WILD_FILES` that are there.

        Raises:
            WeightsError: a shipped weights file is missing, naming it and how to get it.
        """
        paths = {role: MODELS_DIR / name for role, name in (FAST_FILES if fast else DEFAULT_FILES).items()}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise WeightsError(
                "the shipped model weights are missing: "
                + ", ".join(missing)
                + ". They are trained with `python -m training` and installed into core/models/ "
                "(see docs/models.md); reinstall the package to get them back, or pass your "
                "own files (Restorer.from_files, or --model/--mask-model/--baseline-model "
                "on the command line)."
            )
        return cls.from_files(
            paths["mask"],
            paths["restore"],
            paths["baseline"],
            **wild_files(fast),
            device=device,
            precision=precision,
            mask_precision=mask_precision,
            engine=engine,
            **colour_files(restore_given=fast),
        )

    # -- introspection --------------------------------------------------------------------
    def prepare(self) -> None:
        """Set up every loaded model's inference engine now rather than on first use (the
        server calls this at start so that its first job is not slower than the rest)."""
        with self._lock:
            for r in self._runners.values():
                r.prepare()

    def info(self) -> dict[str, Any]:
        """Describe the loaded models, device, precision, engines and the option choices
        (engines are set up first, so that they are reported as they will run)."""
        self.prepare()
        return {
            "device": str(self.device),
            "precision": self.precision,
            "mask_precision": self.mask_precision,
            "channels_last": self.channels_last,
            "engine": self.engine,
            "models": {
                role: {
                    "name": r.name,
                    "precision": r.precision,
                    "engine": r.engine,
                    **({"engine_note": r.engine_note} if r.engine_note else {}),
                    **_describe(r.model),
                }
                for role, r in self._runners.items()
            },
            "mask_methods": [m for m in MASK_METHODS if self._available(m)],
            "backgrounds": list(BACKGROUNDS),
            "default_theta": DEFAULT_THETA,
        }

    def _available(self, method: str) -> bool:
        if method == "none":
            return "baseline" in self._runners
        if method == "learnt":
            return "mask" in self._runners and "restore" in self._runners
        return "restore" in self._runners

    def _backbone_for(self, opts: RestoreOptions) -> _Runner:
        want = "baseline" if opts.mask == "none" else "framework"
        if opts.model is not None:
            key = str(Path(opts.model).resolve())
            runner = self._extra.get(key)
            if runner is None:
                model = _load(opts.model, "restore")
                if _kind(model) != "backbone":
                    raise InvalidOptionError(f"{opts.model} is a mask network, not a restoration backbone")
                runner = _Runner(
                    model, Path(opts.model).name, self.device, self.precision, self.channels_last, self.engine
                )
                self._extra[key] = runner
            mode = getattr(runner.model, "mode", "?")
            if mode != want:
                hint = "use mask 'none'" if mode == "baseline" else "choose a mask method other than 'none'"
                raise InvalidOptionError(f"{opts.model} is a {mode}-mode model; {hint}")
            return runner
        role = "baseline" if want == "baseline" else "restore"
        if role not in self._runners:
            raise InvalidOptionError(
                f"mask method {opts.mask!r} needs a {want}-mode backbone, which this Restorer has not loaded"
            )
        return self._runners[role]

    # -- tiles ----------------------------------------------------------------------------
    def activation_bytes_per_pixel(self, qf: float = DEFAULT_QF) -> dict[str, float]:
        """Each loaded network's tile cost: the most activation bytes alive at once per input
        pixel (measured on first use, see ``_Runner.bytes_per_pixel``), by role."""
        return {role: self._tile_cost(r, qf) for role, r in self._runners.items()}

    def _tile_cost(self, r: _Runner, qf: float | None) -> float:
        if _kind(r.model) == "inks":
            call = lambda s: self._ink_call(r, np.zeros((7, s, s), np.float32))
        elif _kind(r.model) == "mask":
            call = lambda s: self._mask_logit_diff(r, torch.full((1, 1, s, s), 1.0), qf)
        else:
            call = lambda s: self._backbone_call(
                r, torch.full((1, 1, s, s), 1.0), torch.zeros((1, 1, s, s), dtype=torch.uint8), qf
            )
        return r.bytes_per_pixel(call)

    def _auto_tile(self, runners: list[_Runner], align: int, qf: float) -> int:
        bpp = max((self._tile_cost(r, qf) for r in runners), default=64.0)
        return choose_tile(bpp, self.device, align)

    @torch.inference_mode()
    def _mask_logit_diff(self, r: _Runner, x: torch.Tensor, qf: float | None, n: int = 1) -> torch.Tensor:
        def run(xt):
            with r.autocast():
                logits = r(r.to_device(xt), qf)
            return logits[:, 1:2].float() - logits[:, 0:1].float(), None

        return ensemble.mean_over(run, [x], n)[0]

    @torch.inference_mode()
    def _backbone_call(
        self, r: _Runner, x: torch.Tensor, mask_u8: torch.Tensor | None, qf: float | None, n: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = None
        if getattr(r.model, "mode", "baseline") == "framework":
            m = r.to_device(mask_u8.to(torch.float32))

        def run(xt, mt):
            with r.autocast():
                out, qf_pred = r(r.to_device(xt), mt, qf)
            return out.float(), qf_pred

        return ensemble.mean_over(run, [x, m], n)

    # -- the pipeline -----------------------------------------------------------------------
    def restore(
        self,
        image: np.ndarray,
        options: RestoreOptions | None = None,
        progress: Callable[[float], None] | None = None,
        cancel: CancelFlag = None,
    ) -> RestoreResult:
        """Restore one layer. See the module docstring for the steps.

        Args:
            image: numpy (H, W) / (H, W, 2) / (H, W, 3) / (H, W, 4), uint8 or uint16.
            options: :class:`RestoreOptions` (defaults when ``None``).
            progress: called with the fraction done (0..1] after every tile and at the end.
            cancel: a callable returning True, or a ``threading.Event``, checked between tiles.

        Raises:
            InvalidImageError, InvalidOptionError, WeightsError, OutOfMemoryError, CancelledError.
        """
        opts = options if options is not None else RestoreOptions()
        if not isinstance(opts, RestoreOptions):
            raise InvalidOptionError(f"options must be RestoreOptions, got {type(opts).__name__}")
        # A caller's step hook (core.steps.step_hook) runs with the lock released, so that a
        # server can interleave several jobs tile by tile, one thread at a time.
        with self._lock, unlocked_at_steps(self._lock):
            return self._restore(image, opts, progress, cancel)

    def _restore(self, image, opts: RestoreOptions, progress, cancel) -> RestoreResult:
        if opts.enlarged and _may_be_enlarged(image):
            t = time.perf_counter()
            gray8 = _layer_gray8(image)
            found = resample.find_enlargement(gray8)
            if found is not None and found.weak and not colour.is_neutral(image):
                found = None  # the weaker rule for small layers was calibrated on gray layers only
            if found is not None:
                return self._restore_enlarged(image, gray8, found, opts, progress, cancel, time.perf_counter() - t)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        check_cancel(cancel)
        planes = network_planes(image, opts.normalize_ink)
        plane, x, direction, ink_k = planes.plane, planes.x, planes.direction, planes.ink_k
        if direction is not None and "colour_inks" in self._runners:
            t = time.perf_counter()
            runner = self._runners["colour_inks"]
            direction = colour.refine_directions(image, plane.gray, direction, lambda f: self._ink_call(runner, f))
            timings["inks"] = time.perf_counter() - t
        notes = list(plane.notes)
        h, w = plane.gray.shape
        if ink_k != 1.0:
            notes.append(f"light ink: stretched {ink_k:.2f}x to full contrast for the networks and back after")

        backbone = self._backbone_for(opts)
        if direction is not None and backbone is self._runners.get("restore") and "restore_colour" in self._runners:
            backbone = self._runners["restore_colour"]  # a coloured layer: its own backbone
        mask_runner = None
        if opts.mask == "learnt":
            if "mask" not in self._runners:
                raise InvalidOptionError(
                    "mask method 'learnt' needs a mask network, which this Restorer has not loaded"
                )
            mask_runner = self._runners["mask"]
            if direction is not None and "mask_colour" in self._runners:
                mask_runner = self._runners["mask_colour"]  # a coloured layer: its own mask network
        mask_x = planes.mask_input(
            colour_mask=mask_runner is not None and mask_runner is self._runners.get("mask_colour")
        )
        del planes

        needs_qf = bool(getattr(backbone.model, "needs_qf", False)) or bool(
            mask_runner is not None and getattr(mask_runner.model, "needs_qf", False)
        )
        qf_in: float | None = float(opts.qf) if opts.qf is not None else None
        if needs_qf and qf_in is None:
            qf_in = float(DEFAULT_QF)
            notes.append(f"no JPEG quality given for a non-blind model; assumed QF {DEFAULT_QF}")
        if qf_in is not None and ink_k != 1.0:
            # The stretch multiplies the JPEG's quantization steps by ink_k: a non-blind model gets
            # the quality of those steps, not of the file's.
            qf_in = ink.stretched_qf(qf_in, ink_k)
        qf_probe = qf_in if qf_in is not None else float(DEFAULT_QF)

        runners = [backbone] + ([mask_runner] if mask_runner else [])
        align = math.lcm(8, *(r.multiple_of for r in runners))
        tile = opts.tile if opts.tile is not None else self._auto_tile(runners, align, qf_probe)
        tile = max(align, (int(tile) // align) * align)
        timings["prepare"] = time.perf_counter() - t0

        # Progress: count the tiles of every pass.
        passes = 1 + int(mask_runner is not None)
        done = [0]
        total = [0]

        reported = [0.0]

        def tick(_n: int) -> None:
            done[0] += 1
            if progress is not None:
                # Never backwards, also when a pass is added (the wild backbone's second run).
                reported[0] = max(reported[0], min(done[0] / max(total[0], 1), 0.999))
                progress(reported[0])

        job = _Job(
            x=x,
            plane=plane,
            opts=opts,
            backbone=backbone,
            mask_runner=mask_runner,
            qf_in=qf_in,
            tick=tick,
            cancel=cancel,
            notes=notes,
            timings=timings,
            t0=t0,
            progress=progress,
            ink_k=ink_k,
            direction=direction,
            mask_x=mask_x,
            total=total,
            colour_layer=image if direction is not None else None,
        )
        while True:
            try:
                plan = plan_tiles(h, w, tile, self._overlap(opts, tile, align), align)
                total[0] = passes * len(plan) + done[0]
                with _glue_threads(runners):
                    return self._run_passes(job, plan)
            except (torch.OutOfMemoryError, MemoryError, RuntimeError) as e:
                if isinstance(e, RuntimeError) and not _is_oom(e):
                    raise
                if tile <= MIN_TILE:
                    raise OutOfMemoryError(f"out of memory on {self.device} even with {tile}-pixel tiles ({e})") from e
                tile = max(MIN_TILE, ((tile // 2) // align) * align)
                notes.append(f"ran out of memory; retried with {tile}-pixel tiles")
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _restore_enlarged(
        self,
        image,
        gray8: np.ndarray,
        found: resample.Enlargement,
        opts: RestoreOptions,
        progress,
        cancel,
        spent: float,
    ):
        """A JPEG enlarged after its save (``found`` in ``gray8``, its gray): brought back to the
        JPEG's own size (:func:`core.resample.undo_enlargement`, which also finds the kernel it was
        enlarged with), restored there by the default pair (the networks' 8x8 world: a JPEG at its
        own size), and the result enlarged to the layer's size with the same kernel."""
        t = time.perf_counter()
        h, w = image.shape[:2]
        shrunk = resample.undo_enlargement(image, found.factor, gray8, search=found.weak)
        small = shrunk.image
        size = (small.shape[1], small.shape[0])
        spent += time.perf_counter() - t
        res = self._restore(small, dataclasses.replace(opts, enlarged=False, wild_network=False), progress, cancel)
        t = time.perf_counter()
        out = _resize(res.image, (w, h), resample.ENLARGE_KERNELS[shrunk.kernel])
        if opts.threshold:
            if opts.background == "transparent":
                alpha = out[..., -1]
                alpha[alpha < 255 - opts.theta] = 0
            else:
                ink_part = out if out.ndim == 2 else out[..., : 3 if out.shape[2] >= 3 else 1]
                paper = ink_part.min(axis=-1) > opts.theta if ink_part.ndim == 3 else ink_part > opts.theta
                ink_part[paper] = 255
        mask = None if res.mask is None else cv2.resize(res.mask, (w, h), interpolation=cv2.INTER_NEAREST)
        timings = dict(res.timings)
        timings["resample"] = spent + time.perf_counter() - t
        timings["total"] = timings.get("total", 0.0) + timings["resample"]
        note = (
            f"enlarged after compression (about x{w / size[0]:.2f}): restored at the JPEG's own size "
            f"({size[0]}x{size[1]}) and scaled back ({shrunk.kernel} kernel, the one that explains its pixels best)"
        )
        return dataclasses.replace(res, image=out, mask=mask, timings=timings, notes=[note, *res.notes])

    @staticmethod
    def _ink_call(runner: _Runner, features: np.ndarray) -> np.ndarray:
        """The ink network on one band's (7, h, W) features: its (3, h, W) float32 directions."""
        with torch.inference_mode(), runner.autocast():
            u = runner(runner.to_device(torch.from_numpy(features)[None]))
        return u[0].float().cpu().numpy()

    @staticmethod
    def _overlap(opts: RestoreOptions, tile: int, align: int) -> int:
        return opts.overlap if opts.overlap is not None else default_overlap(tile, align)

    def _run_passes(self, job: _Job, plan) -> RestoreResult:
        plane, opts, mask_runner = job.plane, job.opts, job.mask_runner
        cancel, notes, timings, progress = job.cancel, job.notes, job.timings, job.progress
        timings["restore"] = timings["finish"] = 0.0  # (again after running out of memory)
        h, w = plane.gray.shape
        # ---- which backbone: the default one, or the wild one where the layer holds no JPEG grid
        gray8 = grid = None
        wild = self._wild_runner(job)
        wild_colour = self._wild_colour_runner(job) if job.direction is not None else None
        if plane.dtype == np.uint8 and job.direction is None and (opts.jpeg_consistency or wild is not None):
            t = time.perf_counter()
            gray8 = _gray8(plane.gray)
            grid = jpeg_consistency.find_jpeg_grid(gray8, table=opts.jpeg_table)
            timings["consistency"] = time.perf_counter() - t
        backbone = job.backbone
        probed: float | None = None  # the outside share on the probe window, where it decided for the wild pair
        resized: bool | None = None  # resample.looks_resized with a table found, once asked
        fit: jpeg_consistency.ResaveFit | None = None  # the re-save fit on the probe window, where it ran
        evidence = None if wild is None or grid is not None else resample.resize_evidence(gray8, table_found=False)
        if evidence is not None:
            backbone = wild
            notes.append(f"{evidence}: restored with the network trained on resized and re-saved JPEGs")
        elif wild is not None and grid is not None and _holds_windows(h, w):
            t = time.perf_counter()
            resized = resample.looks_resized(gray8, table_found=True)
            if resized:
                share, fit = self._probe(job, plan, gray8, grid)
                if share > jpeg_consistency.max_outside(grid) and not _resave(fit):
                    backbone, probed = wild, share
                    notes.append(
                        "its damage is not on the 8x8 grid of the layer's size (resized before the last save?"
                        + _fit_note(fit)
                        + "): restored with the network trained on resized and re-saved JPEGs (decided on a "
                        f"{PROBE_SIDE} px window)"
                    )
            timings["probe"] = time.perf_counter() - t
        elif wild_colour is not None:
            t = time.perf_counter()
            if self._colour_without_grid(job):
                backbone = wild_colour
                notes.append(
                    "no JPEG grid in the layer's luminance (resized after compression, exported, or too light to "
                    "tell?): restored with the colour network trained on JPEGs at their size and resized after "
                    "compression"
                )
            timings["consistency"] = time.perf_counter() - t

        # ---- mask
        t = time.perf_counter()
        mask_u8: np.ndarray | None = None
        wild_mask = self._runners.get("mask_wild") if opts.mask == "learnt" else None
        # The mask and its uncertain rim (RIM_MARGIN): what eq. 2 keeps of a layer taken for resized (a
        # colour layer may be found so after the consistency step).
        kept_u8: np.ndarray | None = None
        if opts.mask == "learnt" and backbone is wild and wild_mask:
            mask_u8, kept_u8 = self._mask_and_rim(job, plan, wild_mask)
        elif opts.mask == "learnt" and wild_colour is not None:
            mask_u8, kept_u8 = self._mask_and_rim(job, plan, mask_runner)
        elif opts.mask == "learnt":
            mask_u8 = self._mask_pass(job, plan, mask_runner)
        elif opts.mask in direct_masks.DIRECT_MASKS:
            mask_u8 = direct_masks.DIRECT_MASKS[opts.mask](gray8 if gray8 is not None else _gray8(plane.gray))
        timings["mask"] = time.perf_counter() - t
        check_cancel(cancel)

        # ---- backbone, compose, threshold
        if backbone is wild and wild_mask is None and grid is None:
            mask_u8 = _widen(mask_u8)
        mask_t = torch.from_numpy(mask_u8).view(1, 1, h, w) if mask_u8 is not None else None
        kept_t = torch.from_numpy(kept_u8).view(1, 1, h, w) if kept_u8 is not None else None
        taken_for_resized = backbone is wild or (wild_colour is not None and backbone is wild_colour)
        restored, qf_estimate = self._backbone_pass(job, plan, backbone, mask_t, kept_t if taken_for_resized else None)
        if taken_for_resized and kept_u8 is not None:
            mask_u8 = _with_kept_rim(mask_u8, restored)

        # ---- JPEG consistency, or the wild backbone where the layer was resized before its last JPEG
        jpeg_quality = None
        if job.colour_layer is not None and opts.jpeg_consistency:
            t = time.perf_counter()
            jpeg_quality = self._make_consistent_colour(job, restored, mask_u8)
            timings["consistency"] = timings.get("consistency", 0.0) + time.perf_counter() - t
            if job.colour_skipped is not None and wild_colour is not None and backbone is not wild_colour:
                # Its last JPEG did not make its damage: as on gray layers, where no re-save at the
                # layer's size explains it (a JPEG resized before its last save), the colour wild
                # backbone restores it again.
                t = time.perf_counter()
                fit = jpeg_consistency.resave_fit(*job.colour_skipped)
                timings["probe"] = timings.get("probe", 0.0) + time.perf_counter() - t
                if fit is not None and not _resave(fit):
                    job.total[0] += len(plan)
                    restored, qf_estimate = self._backbone_pass(job, plan, wild_colour, mask_t, kept_t)
                    if kept_u8 is not None:
                        mask_u8 = _with_kept_rim(mask_u8, restored)
                    notes.append(
                        "its damage is not on the 8x8 grid of the layer's size (resized before the last save?"
                        + _fit_note(fit)
                        + "): restored again with the colour network trained on JPEGs at their size and resized "
                        "after compression"
                    )
        elif grid is not None:
            t = time.perf_counter()
            if probed is not None:
                outside = probed
            else:
                paper = None if mask_u8 is None else mask_u8 == 0
                outside = jpeg_consistency.outside_share(restored, gray8, grid, paper)
            resaved = outside > jpeg_consistency.max_outside(grid)
            if resaved:
                self._note_resaved(gray8, grid, outside, opts, notes, skipped=opts.jpeg_consistency)
            elif opts.jpeg_consistency and (twice := self._saved_twice(gray8, restored, grid)) is not None:
                notes.append(
                    f"re-saved JPEG on the same grid: first quality about {twice.quality}, last {grid.qf} (a save "
                    f"at the first quality, then the last, explains the layer better than the last alone: "
                    f"{twice.ratio:.2f} of its residual); the clean drawing lies outside the last save's "
                    "quantization steps there, so the consistency step was skipped"
                )
            elif opts.jpeg_consistency:
                jpeg_quality = self._make_consistent(restored, gray8, grid, mask_u8, opts, notes)
            timings["consistency"] += time.perf_counter() - t
            if resaved and wild is not None and backbone is not wild:
                # Whether a re-save at the layer's size explains its damage (then the default pair
                # stays), or the JPEG was resized before its last save (then the wild pair restores it).
                t = time.perf_counter()
                if fit is None:  # (the probe window measured it already where it ran)
                    fit = jpeg_consistency.resave_fit(gray8, restored, grid)
                timings["probe"] = timings.get("probe", 0.0) + time.perf_counter() - t
                if fit is not None:
                    resized = not _resave(fit)
                elif resized is None:
                    resized = resample.looks_resized(gray8, table_found=True)
                # Without a fit (no coarser quality to try): re-saves at the layer's size keep a
                # strong grid and the default pair, but so does a JPEG enlarged and then saved again at
                # a low quality, which the default pair can leave below its input: where the two pairs
                # disagree far more than they do on re-saves, the wild pair's reading is kept. On a
                # layer that holds two windows the wild pair runs on the window first and restores the
                # layer only where they disagree.
                windowed = fit is None and not resized and _holds_windows(h, w)
                if windowed:
                    t = time.perf_counter()
                    win, wild_window, _ = self._window_restore(job, plan, gray8, wild_mask, wild)
                    gap = _rms_gap(wild_window, restored[win])
                    timings["probe"] = timings.get("probe", 0.0) + time.perf_counter() - t
                if resized or (fit is None and (not windowed or gap > WILD_DISAGREEMENT)):
                    job.total[0] += len(plan) * (1 + int(wild_mask is not None))
                    t = time.perf_counter()
                    wild_mask_u8, wild_kept_u8 = mask_u8, None
                    if wild_mask is not None and resized:
                        wild_mask_u8, wild_kept_u8 = self._mask_and_rim(job, plan, wild_mask)
                    elif wild_mask is not None:
                        wild_mask_u8 = self._mask_pass(job, plan, wild_mask)
                    timings["mask"] += time.perf_counter() - t
                    wild_mask_t = mask_t if wild_mask is None else torch.from_numpy(wild_mask_u8).view(1, 1, h, w)
                    wild_kept_t = None if wild_kept_u8 is None else torch.from_numpy(wild_kept_u8).view(1, 1, h, w)
                    wild_restored, wild_qf = self._backbone_pass(job, plan, wild, wild_mask_t, wild_kept_t)
                    if wild_kept_u8 is not None:
                        wild_mask_u8 = _with_kept_rim(wild_mask_u8, wild_restored)
                    if not windowed and not resized:
                        gap = _rms_gap(wild_restored, restored)
                    if resized:
                        notes.append(
                            "its damage is not on the 8x8 grid of the layer's size (resized before the last save?"
                            + _fit_note(fit)
                            + "): restored again with the network trained on resized and re-saved JPEGs"
                        )
                    elif gap > WILD_DISAGREEMENT:
                        where = f" on a {PROBE_SIDE} px window" if windowed else ""
                        notes.append(
                            f"restored again with the network trained on resized and re-saved JPEGs, whose result "
                            f"lies {gap:.1f} gray levels (RMS){where} from the default network's, more than on "
                            "re-saves at the layer's size (resized before the last save?): its result was kept"
                        )
                    if resized or gap > WILD_DISAGREEMENT:
                        restored, qf_estimate, mask_u8 = wild_restored, wild_qf, wild_mask_u8
        elif opts.jpeg_consistency and opts.jpeg_table is not None and gray8 is not None:
            # Most layers are not unedited JPEGs (PNGs, painted layers): that is said only when a
            # file's table was given and did not fit.
            notes.append(
                "the JPEG file's quantization table does not reproduce the layer's pixels (coloured lines, or "
                "edited or rescaled after decoding?), so the result was not made consistent with it"
            )
        t = time.perf_counter()
        if job.direction is None:
            out = from_gray_float(restored.numpy(), plane.layout, plane.dtype, opts.background)
        else:
            out = colour.to_layer(restored.numpy(), job.direction, plane.layout, plane.dtype, opts.background)
        timings["finish"] += time.perf_counter() - t
        timings["total"] = time.perf_counter() - job.t0
        if progress is not None:
            progress(1.0)
        return RestoreResult(
            image=out,
            mask=mask_u8 if opts.return_mask else None,
            qf_estimate=qf_estimate,
            timings=timings,
            notes=notes,
            tile=plan.tile,
            tiles=len(plan),
            jpeg_quality=jpeg_quality,
        )

    def _wild_runner(self, job: _Job) -> _Runner | None:
        """The wild backbone, where the ``wild_network`` option may use it on this layer."""
        opts = job.opts
        usable = opts.wild_network and opts.model is None and opts.mask != "none" and job.direction is None
        return self._runners.get("wild") if usable and job.plane.dtype == np.uint8 else None

    def _wild_colour_runner(self, job: _Job) -> _Runner | None:
        """The colour layers' wild backbone, where the ``wild_network`` option may use it on this
        (coloured) layer: in place of the colour backbone (or the default one), on 8-bit layers."""
        opts = job.opts
        usable = opts.wild_network and opts.model is None and opts.mask != "none" and job.colour_layer is not None
        return self._runners.get("wild_colour") if usable and job.plane.dtype == np.uint8 else None

    @staticmethod
    def _colour_without_grid(job: _Job) -> bool:
        """Whether a coloured layer's stored luminance (:func:`core.colour.jpeg_luma`) holds no JPEG
        grid, searched before the networks run (without a restoration to start from); the luminance
        is kept in ``job.colour_search`` for the consistency step, which searches again from the
        networks' result. ``False`` where the layer has no JPEG plane at all (transparent pixels):
        those keep the colour backbone."""
        stored = colour.jpeg_luma(job.colour_layer)
        if stored is None:
            return False
        y8, bounds = stored
        grid = jpeg_consistency.find_jpeg_grid(y8, table=job.opts.jpeg_table, bounds=bounds)
        job.colour_search = stored
        return grid is None

    def _probe(self, job: _Job, plan, gray8: np.ndarray, grid) -> tuple[float, jpeg_consistency.ResaveFit | None]:
        """The default pair run on the :data:`PROBE_SIDE` window with the most ink, on the layer's 8x8
        grid: the share of its restoration outside the boxes of the layer's last JPEG
        (:func:`core.jpeg_consistency.outside_share`) and, where that is above
        :func:`~core.jpeg_consistency.max_outside`, whether a re-save explains the window's damage
        (:func:`core.jpeg_consistency.resave_fit`). If not, the whole layer goes to the wild pair at
        once, instead of being restored twice."""
        win, restored, mask_u8 = self._window_restore(job, plan, gray8, job.mask_runner, job.backbone)
        paper = None if mask_u8 is None else mask_u8 == 0
        share = jpeg_consistency.outside_share(restored, gray8[win], grid, paper)
        if share <= jpeg_consistency.max_outside(grid):
            return share, None
        return share, jpeg_consistency.resave_fit(gray8[win], restored, grid)

    def _window_restore(self, job: _Job, plan, gray8: np.ndarray, mask_runner, backbone):
        """A pair (``mask_runner`` may be None: the options' direct mask, or the layer's mask where
        the wild pair has no mask network) run on the :data:`PROBE_SIDE` window with the most ink,
        which starts on the layer's 8x8 grid: ``(window slices, restored window, its mask)``."""
        side = PROBE_SIDE
        win = densest_window(gray8 < 128, side, 4 * plan.align)  # (the corner keeps the layer's 8x8 grid)
        sub = dataclasses.replace(
            job,
            x=job.x[..., win[0], win[1]],
            mask_x=None if job.mask_x is None else job.mask_x[..., win[0], win[1]],
            plane=dataclasses.replace(job.plane, gray=job.plane.gray[win]),
            tick=lambda _n: None,
            notes=[],
            timings={},
        )
        sub_plan = plan_tiles(side, side, plan.tile, plan.overlap, plan.align)
        opts, window = job.opts, gray8[win]
        mask_u8 = None
        mask_runner = mask_runner or job.mask_runner
        if opts.mask == "learnt" and mask_runner is not None:
            mask_u8 = self._mask_pass(sub, sub_plan, mask_runner)
        elif opts.mask in direct_masks.DIRECT_MASKS:
            mask_u8 = direct_masks.DIRECT_MASKS[opts.mask](window)
        mask_t = None if mask_u8 is None else torch.from_numpy(mask_u8).view(1, 1, side, side)
        restored, _ = self._backbone_pass(sub, sub_plan, backbone, mask_t)
        return win, restored, mask_u8

    def _mask_pass(self, job: _Job, plan, runner: _Runner) -> np.ndarray:
        """The learnt line mask (H, W) uint8, tile by tile: the blended logit difference above 0."""
        return (self._mask_logits(job, plan, runner) > 0).numpy().astype(np.uint8)

    def _mask_and_rim(self, job: _Job, plan, runner: _Runner) -> tuple[np.ndarray, np.ndarray]:
        """The learnt line mask, and the mask with its uncertain rim (:data:`RIM_MARGIN`, on colour
        layers :data:`RIM_MARGIN_COLOUR`): what eq. 2 keeps of a layer taken for resized (both
        (H, W) uint8)."""
        margin = RIM_MARGIN if job.direction is None else RIM_MARGIN_COLOUR
        mask, kept = mask_with_rim(self._mask_logits(job, plan, runner), margin)
        return mask.numpy().astype(np.uint8), kept.numpy().astype(np.uint8)

    def _mask_logits(self, job: _Job, plan, runner: _Runner) -> torch.Tensor:
        """The mask network's line logit minus its paper logit (H, W), tile by tile, blended."""
        diff = run_tiled(
            lambda _tile, crop: self._mask_logit_diff(runner, crop, job.qf_in, job.opts.ensemble),
            [job.x if job.mask_x is None else job.mask_x],
            plan,
            1,
            progress=job.tick,
            cancel=job.cancel,
        )
        return diff[0, 0]

    def _backbone_pass(
        self, job: _Job, plan, backbone: _Runner, mask_t: torch.Tensor | None, keep_t: torch.Tensor | None = None
    ):
        """The backbone tile by tile (given ``mask_t``), then eq. 2 (keeping the lines of ``keep_t``,
        by default ``mask_t``) and eq. 1: the restored (H, W) plane and the QF a blind FBCNN
        estimated (or None)."""
        x, opts, qf_in, notes, timings = job.x, job.opts, job.qf_in, job.notes, job.timings
        h, w = job.plane.gray.shape
        t = time.perf_counter()
        qf_run = qf_in
        qf_estimate: float | None = None
        model = backbone.model
        if getattr(model, "predicts_qf", False) and qf_in is None and len(plan) > 1:
            # One QF for every tile, so that tiles agree: estimate it on the tile with the most
            # line pixels (or the first tile when there is no mask).
            if mask_t is not None:
                best = max(plan.tiles, key=lambda tl: int(mask_t[0, 0, tl.y0 : tl.y1, tl.x0 : tl.x1].sum()))
            else:
                best = plan.tiles[0]
            crop_m = mask_t[:, :, best.y0 : best.y1, best.x0 : best.x1] if mask_t is not None else None
            _, qf_pred = self._backbone_call(backbone, x[:, :, best.y0 : best.y1, best.x0 : best.x1], crop_m, None)
            qf_estimate = float(qf_pred.float().mean().clamp(1, 100))
            qf_run = qf_estimate
            notes.append(f"JPEG quality estimated on one tile ({qf_estimate:.0f}) and used for all tiles")
        qf_seen: list[float] = []

        skipped = 0

        def backbone_tile(_tile, crop, *rest):
            nonlocal skipped
            if rest and not bool(rest[0].any()):
                # No line pixel anywhere in this tile: eq. 2 makes all of it white whatever the
                # network says, and blending spreads a tile only over its own pixels, so the
                # network is not run (the output is identical).
                skipped += 1
                return torch.ones_like(crop, dtype=torch.float32)
            out, qf_pred = self._backbone_call(backbone, crop, rest[0] if rest else None, qf_run, opts.ensemble)
            if qf_pred is not None:
                qf_seen.append(float(qf_pred.float().mean()))
            return out

        inputs = [x] + ([mask_t] if mask_t is not None else [])
        restored = run_tiled(backbone_tile, inputs, plan, 1, progress=job.tick, cancel=job.cancel)[0, 0]
        if qf_estimate is None and qf_in is None and qf_seen:
            qf_estimate = float(np.mean(qf_seen))
        timings["restore"] = timings.get("restore", 0.0) + time.perf_counter() - t
        if skipped:
            note = f"{skipped} of {len(plan)} tiles have no line pixel and were not run through the network"
            if note not in notes:
                notes.append(note)
        if opts.ensemble > 1:
            note = (
                f"self-ensemble: the networks ran on {opts.ensemble} mirrored or turned copies of every tile, averaged"
            )
            if note not in notes:
                notes.append(note)

        # ---- compose, threshold
        t = time.perf_counter()
        if job.ink_k != 1.0:
            ink.unstretch_(restored, job.ink_k)
        restored.clamp_(0.0, 1.0)
        # Eq. 2 and eq. 1 in row bands, so that their temporaries stay small on huge images.
        for y in range(0, h, _FINISH_ROWS):
            step("rows", y, h)  # a step boundary for a caller's hook (core.steps)
            band = restored[y : y + _FINISH_ROWS]
            if mask_t is not None:
                lines = (mask_t if keep_t is None else keep_t)[0, 0, y : y + _FINISH_ROWS]
                if keep_t is not None and job.direction is not None:
                    # colour: the rim only where the network made it darker than a tint of paper
                    lines = mask_t[0, 0, y : y + _FINISH_ROWS] | (lines & (band < RIM_LEVEL_COLOUR).to(lines.dtype))
                band = compose(band, lines)
            if opts.threshold:
                band = threshold(band, opts.theta)
            restored[y : y + _FINISH_ROWS] = band
        timings["finish"] = timings.get("finish", 0.0) + time.perf_counter() - t
        return restored, qf_estimate

    @staticmethod
    def _source(grid, opts: RestoreOptions) -> str:
        if opts.jpeg_table is not None and not grid.standard:
            return "the file's own quantization table, nearest IJG quality"
        if grid.encoder is not None:
            return f"{grid.encoder}, found in its pixels; nearest IJG quality"
        return (
            "the file's quantization table" if opts.jpeg_table is not None else "standard tables, found in its pixels"
        )

    @staticmethod
    def _saved_twice(gray8, restored: torch.Tensor, grid) -> jpeg_consistency.ResaveFit | None:
        """The same-grid re-save fit where it finds the layer saved twice at about one quality
        (:func:`core.jpeg_consistency.same_grid_resave`), else None."""
        fit = jpeg_consistency.same_grid_resave(gray8, restored, grid)
        return fit if fit is not None and fit.ratio < jpeg_consistency.SAME_GRID_FIT else None

    def _note_resaved(self, gray8, grid, outside: float, opts: RestoreOptions, notes, skipped: bool) -> None:
        """Say that the layer's last JPEG did not make its damage (an earlier, coarser save or a
        resize between saves did), naming the first save's quality where it is found."""
        first = jpeg_consistency.first_quality(gray8, grid)
        what = (
            f"re-saved JPEG: first quality about {first[0]}, last {grid.qf}"
            if first is not None
            else f"the layer's last JPEG (quality {grid.qf}) did not make all of its damage (re-saved from a "
            "coarser JPEG on another grid, or resized after compression?)"
        )
        notes.append(
            f"{what}; the restoration lies outside that JPEG's quantization steps ({self._source(grid, opts)}) on "
            f"{100 * outside:.0f} % of the coefficients" + (", so the consistency step was skipped" if skipped else "")
        )

    def _make_consistent_colour(self, job: _Job, restored: torch.Tensor, mask_u8) -> int | None:
        """The ``jpeg_consistency`` step for a coloured layer: where the luminance recomputed from its
        pixels (:func:`core.colour.jpeg_luma`) holds a JPEG grid, the luminance of the coloured result
        is projected onto the boxes of the luminance the JPEG stored (alternating with white paper),
        and the line plane follows it (each pixel's ink colour kept: :func:`core.colour.correct_luma`).
        The grid is looked for after the networks ran: where clipped channels leave the luminance
        open, the search for the stored coefficients starts from the restoration. Returns the QF
        used, or ``None`` (no grid, or the check found that the JPEG did not make the damage)."""
        opts, notes = job.opts, job.notes
        job.colour_skipped = None  # (again after running out of memory)
        stored = job.colour_search if job.colour_search is not None else colour.jpeg_luma(job.colour_layer)
        if stored is None:  # 16-bit, or transparent pixels: no JPEG plane
            return None
        y8, bounds = stored
        plane = restored.numpy()
        luma = colour.luma_of(plane, job.direction)
        # Searched again from the restoration (the search before the networks, where there was one,
        # had none to start from: on blocks with clipped channels it may settle on a neighbouring
        # quality).
        grid = jpeg_consistency.find_jpeg_grid(y8, table=opts.jpeg_table, bounds=bounds, start=luma * np.float32(255))
        if grid is None:
            if opts.jpeg_table is not None:
                notes.append(
                    "the JPEG file's quantization table does not reproduce the luminance of the layer's pixels "
                    "(edited or rescaled after decoding?), so the result was not made consistent with it"
                )
            return None
        paper = None if mask_u8 is None else mask_u8 == 0
        outside = jpeg_consistency.outside_share(luma, y8, grid, paper, bounds=bounds)
        if outside > jpeg_consistency.max_outside(grid):
            self._note_resaved(y8, grid, outside, opts, notes, skipped=True)
            job.colour_skipped = (y8, luma, grid)
            return None
        target = torch.from_numpy(luma.copy())
        _, share = jpeg_consistency.make_consistent(target, y8, grid, paper, bounds=bounds)
        colour.correct_luma(plane, job.direction, luma, target.numpy())
        del luma, target, bounds
        chroma = self._make_chroma_consistent(job, plane, grid)
        _threshold_again(restored, opts)
        notes.append(
            f"the layer is a colour JPEG of quality {grid.qf} ({self._source(grid, opts)}); the result's "
            f"luminance was made consistent with the luminance it stored on {100 * share:.0f} % of the blocks "
            "with lines (ink colours kept)" + ("; its chroma (stored at full resolution, 4:4:4) too" if chroma else "")
        )
        return grid.qf

    @staticmethod
    def _make_chroma_consistent(job: _Job, plane: np.ndarray, grid) -> bool:
        """Where the JPEG kept its chroma at full resolution (4:4:4: the IJG chroma table at the
        grid's quality reproduces the Cb and Cr read back from the pixels), project the result's Cb
        and Cr onto their boxes and give the ink colours that chroma (luminance kept). Returns
        whether it was done."""
        if not grid.standard:  # the file's own luminance table: its chroma table is unknown
            return False
        layer, table = job.colour_layer, jpeg_consistency.ijg_chroma_table(grid.qf)

        def share(rows: slice) -> float | None:
            shares = [
                jpeg_consistency.reproduced_share(p8, table, 0, grid.dx, b) for p8, b in colour.jpeg_chroma(layer[rows])
            ]
            return None if None in shares else sum(shares) / len(shares)

        # The test on a band of CHROMA_PROBE_ROWS rows on the grid around the middle first (most
        # layers are 4:2:0: their chroma planes are never computed whole), the whole layer where
        # that band holds too few textured blocks.
        mid = grid.dy + 8 * max(0, (layer.shape[0] - grid.dy - CHROMA_PROBE_ROWS) // 16)
        found = share(slice(mid, mid + CHROMA_PROBE_ROWS))
        if found is None and layer.shape[0] > CHROMA_PROBE_ROWS:
            found = share(slice(grid.dy, None))
        if found is None or found < jpeg_consistency.CHROMA_MIN_SHARE:
            return False  # 4:2:0 (upsampled chroma), or not this table
        stored = colour.jpeg_chroma(layer)
        cgrid = dataclasses.replace(grid, table=table)
        planes = []
        for (p8, bounds), current in zip(stored, colour.chroma_of(plane, job.direction)):
            t = torch.from_numpy(current * np.float32(1.0 / 255.0))
            jpeg_consistency.make_consistent(t, p8, cgrid, None, bounds=bounds)
            planes.append(t.numpy() * np.float32(255.0))
        colour.set_chroma(plane, job.direction, *planes)
        return True

    def _make_consistent(self, restored: torch.Tensor, gray8, grid, mask_u8, opts: RestoreOptions, notes) -> int:
        """The ``jpeg_consistency`` step on the composed result (its check passed); returns the QF used."""
        paper = None if mask_u8 is None else mask_u8 == 0
        _, share = jpeg_consistency.make_consistent(restored, gray8, grid, paper)
        _threshold_again(restored, opts)
        notes.append(
            f"the layer is a JPEG of quality {grid.qf} ({self._source(grid, opts)}); the result was "
            f"made consistent with it on {100 * share:.0f} % of the blocks with lines"
        )
        return grid.qf


#: Rows whose chroma the 4:4:4 test looks at first (a multiple of 8).
CHROMA_PROBE_ROWS = 256


def _resave(fit: jpeg_consistency.ResaveFit | None) -> bool:
    """Whether :func:`core.jpeg_consistency.resave_fit` found the damage explained by a re-save at
    the layer's size (``False`` where it could not tell)."""
    return fit is not None and fit.ratio < jpeg_consistency.RESAVE_FIT


def _fit_note(fit: jpeg_consistency.ResaveFit | None) -> str:
    """What the re-save fit found, for a note on a layer taken for resized ('' without a fit)."""
    if fit is None:
        return ""
    return (
        f" no re-save at its size explains it: the best, a first save at quality {fit.quality} on the grid at "
        f"({fit.dy}, {fit.dx}), leaves {100 * fit.ratio:.0f} % of the last save's residual"
    )


def _threshold_again(restored: torch.Tensor, opts: RestoreOptions) -> None:
    """Eq. 1 on the plane once more (in place, row bands) after the consistency step moved it."""
    if opts.threshold:
        for y in range(0, restored.shape[0], _FINISH_ROWS):
            step("rows", y, restored.shape[0])
            restored[y : y + _FINISH_ROWS] = threshold(restored[y : y + _FINISH_ROWS], opts.theta)


def _holds_windows(h: int, w: int) -> bool:
    """Whether a layer is large enough for decisions on a :data:`PROBE_SIDE` window first."""
    return min(h, w) >= PROBE_SIDE and h * w >= PROBE_MIN_WINDOWS * PROBE_SIDE**2


def _rms_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """RMS difference of two planes (0..1), in gray levels."""
    return float((a - b).square().mean().sqrt()) * 255


def _with_kept_rim(mask_u8: np.ndarray, restored: torch.Tensor) -> np.ndarray:
    """The line mask a job returns where eq. 2 kept the rim (:data:`RIM_MARGIN`): the lines, and
    the rim pixels that came out darker than paper. Eq. 2 made every pixel outside the lines and
    the rim it kept white, so outside the lines those are the pixels darker than paper (rim pixels
    eq. 1 turned white count as paper, as in the picture)."""
    return mask_u8 | (restored.numpy() < 1.0).astype(np.uint8)


def _widen(mask_u8: np.ndarray) -> np.ndarray:
    """The line mask grown by one pixel, for the wild backbone on a layer resized after its last JPEG
    (no table left): the resize softened every edge, and the soft rim the mask network leaves out
    would be forced to white paper (eq. 2). Where a JPEG was saved after the resize, that rim holds
    the last save's ringing instead, and the mask is kept as it is (measured: bench_wild --route)."""
    return cv2.dilate(mask_u8, np.ones((3, 3), np.uint8))


def _gray8(gray: np.ndarray) -> np.ndarray:
    """The gray float plane (0..1) rounded to 8 bits, in row bands (small temporaries)."""
    out = np.empty(gray.shape, dtype=np.uint8)
    for y in range(0, gray.shape[0], 1024):
        v = gray[y : y + 1024] * np.float32(255.0) + np.float32(0.5)
        out[y : y + 1024] = np.clip(v, 0, 255).astype(np.uint8)
    return out


def _may_be_enlarged(image) -> bool:
    """An 8-bit gray, gray+alpha, RGB or RGBA layer large enough for
    :func:`core.resample.find_enlargement` (anything else is left to the usual checks)."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (2, 3, 4)))
        and min(image.shape[:2]) >= resample.MIN_SIDE
    )


def _layer_gray8(image: np.ndarray) -> np.ndarray:
    """An 8-bit layer's gray as seen on white paper (alpha composited, colour to luma), for
    :func:`core.resample.find_enlargement`."""
    if image.ndim == 2:
        return image
    c = image.shape[2]
    g = (
        image[..., 0].astype(np.float32)
        if c <= 2
        else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY).astype(np.float32)
    )
    if c in (2, 4):
        a = image[..., -1].astype(np.float32) / 255.0
        g = g * a + 255.0 * (1.0 - a)
    return np.clip(g + 0.5, 0, 255).astype(np.uint8)


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LANCZOS4) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) resampled to ``size`` (width, height) with ``interpolation``
    (an OpenCV flag; Lanczos unless given), same shape layout (OpenCV drops a single channel;
    2-channel layers are resampled as they are)."""
    out = cv2.resize(image, size, interpolation=interpolation)
    return out[..., None] if image.ndim == 3 and out.ndim == 2 else out
