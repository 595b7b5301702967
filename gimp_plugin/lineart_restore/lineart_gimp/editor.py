"""The few editor operations the restore job needs, as a plain base class.

:class:`Editor` is the seam between the job (:mod:`.job`, GIMP-free) and GIMP: the entry file's
``GimpEditor`` implements it with Gimp/Gegl calls, and the unit tests implement it with byte
buffers. The base class is a harmless null editor: no source, and progress/undo calls do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formats import PixelLayout

__all__ = ["SourceInfo", "Editor"]


@dataclass(frozen=True)
class SourceInfo:
    """What the job must know about the drawable to restore.

    Attributes:
        name: the drawable's name (for messages).
        kind: "layer", "group", "text", "channel", "layer_mask" or "other"; only layers (text
            layers included) can be restored.
        base: "rgb", "gray" or "indexed".
        precision: the image's ``Gimp.Precision`` value name, e.g. "GIMP_PRECISION_U8_NON_LINEAR".
        has_alpha: whether the drawable has an alpha channel.
        width, height: the drawable's size in pixels (its own extent, not the canvas).
        file: local path of the file the image was opened (or imported) from, "" when it has none;
            for a JPEG the client sends its quantization table to the server.
    """

    name: str
    kind: str
    base: str
    precision: str
    has_alpha: bool
    width: int
    height: int
    file: str = ""


class Editor:
    """Null editor; subclasses override every method the job uses.

    Calling contract (what :func:`.job.run_restore` does): ``source()``, then ``read_pixels`` once,
    ``progress_start``/``progress`` while the server works, then ``begin_undo``, one ``add_layer``
    per new layer (each call puts its layer directly above the previous one, the first directly
    above the source), ``select_layer`` for the restored one, ``end_undo`` (always, even after an
    error), ``progress_end`` and ``flush``.
    The source drawable must never be written.
    """

    def source(self) -> SourceInfo | None:
        """The drawable to restore, or None when nothing (or more than one) is selected."""
        return None

    def read_pixels(self, layout: PixelLayout) -> bytes:
        """All pixels of the source in ``layout`` (``layout.size(w, h)`` bytes, host byte order)."""
        raise NotImplementedError("the null editor has no pixels")

    def add_layer(self, name: str, layout: PixelLayout, data: bytes, visible: bool = True) -> None:
        """Insert a new layer of the source's size and offsets, holding ``data`` in ``layout``."""
        raise NotImplementedError("the null editor cannot add layers")

    def select_layer(self, name: str) -> None:
        """Make the layer this editor added as ``name`` the selected (active) one."""

    def begin_undo(self) -> None:
        """Open one undo group for every change that follows."""

    def end_undo(self) -> None:
        """Close the undo group opened by :meth:`begin_undo`."""

    def progress_start(self, text: str) -> None:
        """Show ``text`` and an empty progress bar."""

    def progress(self, fraction: float, text: str | None = None) -> None:
        """Set the progress bar to ``fraction`` (0..1), optionally with new text."""

    def progress_end(self) -> None:
        """Hide the progress bar."""

    def flush(self) -> None:
        """Make the changes visible (refresh displays)."""
