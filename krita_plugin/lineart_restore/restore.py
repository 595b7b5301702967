"""The restore path: check the layer, read it, send it, build the new layers.

Split in three so that only the middle part runs off Krita's main thread:

1. :func:`prepare` (main thread): validate the document/layer/selection, pick the rectangles,
   read the pixels through the editor wrapper. Raises :class:`PluginError` with artist-facing text.
2. :func:`run_on_server` (worker thread): convert to a format the server takes, call the client,
   convert the answer back to Krita's layout, crop to the target and apply the selection.
3. :func:`apply` (main thread): add "<name> restored" (and "<name> line mask") above the source.

:func:`restore_layer` chains the three synchronously; the Krita action runs the same three steps
with step 2 on a worker thread. Nothing here imports ``krita`` or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from . import pixels
from .common import errors as _shared
from .editor import Document, Layer, LayerKind, NewLayer
from .errors import PluginError
from .geometry import Rect, context_rect, mask_name, restored_name, target_rect, unique_name
from .settings import Settings

__all__ = ["Job", "Outcome", "ServerAnswer", "RestoreCall", "prepare", "run_on_server", "apply", "restore_layer"]

_KIND_WORDS = {
    LayerKind.GROUP: "a group layer",
    LayerKind.VECTOR: "a vector layer",
    LayerKind.FILE: "a file layer",
    LayerKind.FILTER: "a filter layer",
    LayerKind.FILL: "a fill layer",
    LayerKind.CLONE: "a clone layer",
    LayerKind.MASK: "a mask",
    LayerKind.OTHER: "not a paint layer",
}


@dataclass(frozen=True)
class Job:
    """Everything the worker needs, read on the main thread.

    Attributes:
        source: the layer being restored (never modified).
        target: canvas rectangle the new layers cover.
        context: canvas rectangle sent to the server (contains ``target``).
        data: pixels of ``context`` in Krita layout ``model``/``depth``.
        model, depth, profile: Krita colour space of ``data`` and of the restored layer (the
            layer's own space, or :data:`pixels.CONVERT_TARGET` when it had to be converted).
        converted_from: "MODEL/DEPTH" of the source when Krita converted it, else "".
        coverage: selection coverage over ``target`` (one byte per pixel) or None (no selection).
        restored_name, mask_name: names of the layers to add.
        settings: the dialog's choices (checked).
        source_file: the document's file; when it is a JPEG, the client sends its quantization
            table along for the server's JPEG-consistency step.
    """

    source: Layer
    target: Rect
    context: Rect
    data: bytes
    model: str
    depth: str
    profile: str
    converted_from: str
    coverage: bytes | None
    restored_name: str
    mask_name: str
    settings: Settings
    source_file: str = ""


@dataclass(frozen=True)
class ServerAnswer:
    """What a :data:`RestoreCall` returns: the result pixels and optional gray8 line mask (255 on
    lines), same size as the request; ``format`` is a wire format name."""

    format: str
    data: bytes
    mask: bytes | None = None
    notes: list[str] = field(default_factory=list)


class RestoreCall(Protocol):
    """The network step: send ``data`` (``width`` x ``height`` pixels in wire format ``fmt``) with
    the job's settings and return the answer; implementations may raise :class:`PluginError`."""

    def __call__(self, data: bytes, fmt: str, width: int, height: int, settings: Settings) -> ServerAnswer: ...


@dataclass(frozen=True)
class Outcome:
    """The worker's product: Krita-layout pixels of ``job.target`` for the restored layer, and
    GRAYA U8 pixels for the mask layer (or None)."""

    restored: bytes
    model: str
    depth: str
    mask: bytes | None
    notes: list[str] = field(default_factory=list)


def prepare(doc: Document, layer: Layer | None, settings: Settings) -> Job:
    """Check that ``layer`` of ``doc`` can be restored and read its pixels.

    Raises:
        PluginError: ``no_document``, ``no_layer``, ``wrong_layer_type``, ``empty_layer``,
            ``unsupported_color`` or ``bad_settings``, with a message for the artist.
    """
    if not doc.is_open:
        raise PluginError("no_document", "Open an image first: there is no document to restore.")
    if layer is None:
        raise PluginError("no_layer", "Select the paint layer that holds the JPEG line art.")
    if layer.kind is not LayerKind.PAINT:
        what = _KIND_WORDS.get(layer.kind, "not a paint layer")
        raise PluginError(
            "wrong_layer_type",
            f'"{layer.name}" is {what}. Restore JPEG Line Art works on paint layers only: '
            "select the paint layer that holds the drawing (or convert this one with "
            "Layer > Convert > to Paint Layer) and try again.",
        )
    try:
        settings = settings.check()
    except ValueError as e:
        raise PluginError("bad_settings", f"Please check the dialog: {e}.") from None

    sel = doc.selection
    target = target_rect(layer.bounds, doc.canvas, sel.bounds if sel is not None else None)
    if target.empty:
        if sel is not None and not layer.bounds.intersect(doc.canvas).empty:
            raise PluginError(
                "empty_layer",
                f'The selection does not touch anything painted on "{layer.name}". '
                "Select part of the drawing, or deselect (Ctrl+Shift+A) to restore the whole layer.",
            )
        raise PluginError("empty_layer", f'"{layer.name}" is empty: there is nothing to restore.')
    context = context_rect(target, layer.bounds.intersect(doc.canvas))

    space = (layer.color_model, layer.color_depth)
    converted_from = ""
    if space in pixels.KRITA_NATIVE:
        model, depth, profile = layer.color_model, layer.color_depth, layer.color_profile
        data = layer.read_pixels(context)
    else:
        model, depth, profile = pixels.CONVERT_TARGET
        converted_from = f"{space[0]}/{space[1]}"
        try:
            data = layer.read_pixels_as(context, model, depth, profile)
        except Exception as e:  # the editor could not convert: refuse clearly
            raise PluginError(
                "unsupported_color",
                f'"{layer.name}" uses the {space[0]} {space[1]} colour space, which the plug-in '
                "could not convert. Convert the layer to 8- or 16-bit RGB or grayscale "
                "(Layer > Convert > Layer Color Space) and try again.",
                details=str(e),
            ) from None
    fmt = pixels.KRITA_NATIVE[(model, depth)]
    bpp = pixels.bytes_per_pixel(fmt)
    if len(data) != context.area * bpp:
        raise PluginError(
            "unsupported_color",
            f'Krita returned {len(data)} bytes for a {context.w}x{context.h} area of "{layer.name}" '
            f"({model} {depth} needs {context.area * bpp}).",
        )
    coverage = sel.coverage_in(target) if sel is not None else None
    inside = pixels.crop(data, bpp, context, target)
    if coverage is not None:
        inside = pixels.apply_coverage(inside, fmt, coverage)
    if pixels.is_transparent(inside, fmt):
        where = "inside the selection" if sel is not None else "on the canvas"
        raise PluginError("empty_layer", f'"{layer.name}" has no visible pixels {where}: there is nothing to restore.')

    taken = doc.sibling_names(layer)
    r_name = unique_name(restored_name(layer.name), taken)
    m_name = unique_name(mask_name(layer.name), set(taken) | {r_name})
    return Job(
        source=layer,
        target=target,
        context=context,
        data=data,
        model=model,
        depth=depth,
        profile=profile,
        converted_from=converted_from,
        coverage=coverage,
        restored_name=r_name,
        mask_name=m_name,
        settings=settings,
        source_file=doc.file_path,
    )


def run_on_server(
    job: Job,
    call: RestoreCall,
    accepted: frozenset[str] | set[str] | None = None,
) -> Outcome:
    """Send ``job`` through ``call`` and turn the answer into Krita-layout pixels of the target.

    Safe to run on a worker thread: touches no editor object.

    Raises:
        PluginError: the answer has the wrong size or format (``server_error``), or whatever
            ``call`` raised.
    """
    w, h = job.context.w, job.context.h
    data, fmt = pixels.krita_to_wire(job.data, job.model, job.depth, w, h, accepted)
    answer = call(data, fmt, w, h, job.settings)
    if answer.format not in pixels.WIRE_FORMATS:
        raise PluginError(
            "server_error", f"The server answered in the {answer.format!r} pixel format, which the plug-in cannot use."
        )
    try:
        restored, model, depth = pixels.wire_to_krita(answer.data, answer.format, w, h)
    except ValueError as e:
        raise PluginError("server_error", f"The server's answer does not fit the layer: {e}") from None
    bpp = pixels.bytes_per_pixel(answer.format)
    restored = pixels.crop(restored, bpp, job.context, job.target)
    if job.coverage is not None:
        restored = pixels.apply_coverage(restored, answer.format, job.coverage)
    mask = None
    if job.settings.add_mask_layer and answer.mask is not None:
        if len(answer.mask) != w * h:
            raise PluginError("server_error", "The server's line mask does not match the layer size.")
        m = pixels.crop(answer.mask, 1, job.context, job.target)
        mask = pixels.mask_to_graya8(m)
        if job.coverage is not None:
            mask = pixels.apply_coverage(mask, "graya8", job.coverage)
    notes = _shared.layer_notes(list(answer.notes))
    if job.converted_from:
        notes.append(f"The layer was converted from {job.converted_from} to {job.model}/{job.depth} for restoring.")
    if job.settings.add_mask_layer and answer.mask is None:
        notes.append("The server made no line mask for this mask method, so no mask layer was added.")
    return Outcome(restored=restored, model=model, depth=depth, mask=mask, notes=notes)


def apply(doc: Document, job: Job, outcome: Outcome) -> list[Layer]:
    """Add the restored layer (and the mask layer, hidden) above ``job.source`` and make the
    restored one active (never the hidden mask); returns them."""
    profile = job.profile if (outcome.model, outcome.depth) == (job.model, job.depth) else ""
    layers = [
        NewLayer(
            name=job.restored_name,
            rect=job.target,
            model=outcome.model,
            depth=outcome.depth,
            profile=profile,
            data=outcome.restored,
        )
    ]
    if outcome.mask is not None:
        layers.append(
            NewLayer(
                name=job.mask_name,
                rect=job.target,
                model="GRAYA",
                depth="U8",
                profile="",
                data=outcome.mask,
                visible=False,
            )
        )
    added = doc.add_layers_above(job.source, layers)
    doc.set_active_layer(added[0])
    return added


def restore_layer(
    doc: Document,
    layer: Layer | None,
    settings: Settings,
    call: RestoreCall,
    accepted: frozenset[str] | set[str] | None = None,
) -> tuple[list[Layer], Outcome]:
    """The whole restore path, synchronously (what the action does, minus dialog and thread)."""
    job = prepare(doc, layer, settings)
    outcome = run_on_server(job, call, accepted)
    return apply(doc, job, outcome), outcome
