"""Step boundaries: points between pieces of a long computation where a caller may step in.

The pipeline calls :func:`step` between tiles (``core.tiling.run_tiled``), between self-ensemble
passes (``core.ensemble``), between row chunks of its whole-image conversions (``core.imageio``,
``core.colour``) and of its finishing steps (eq. 1-2 in ``core.pipeline``, the JPEG-consistency
projection in ``core.jpeg_consistency``). Nothing happens there unless the calling thread set a hook with
:func:`step_hook`: a server uses it to report progress, to stop a cancelled job and to let other
jobs take turns. Standard library only (no torch), so that any core module can call it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

__all__ = ["StepHook", "step_hook", "unlocked_at_steps", "step"]

_steps = threading.local()
#: ``hook(kind, done, total)``; ``kind`` is "tile", "pass" or "rows".
StepHook = Callable[[str, int, int], None]


@contextlib.contextmanager
def _thread_setting(name: str, value: object):
    previous = getattr(_steps, name, None)
    setattr(_steps, name, value)
    try:
        yield
    finally:
        setattr(_steps, name, previous)


def step_hook(hook: StepHook):
    """Call ``hook(kind, done, total)`` in this thread at every step boundary of the work inside
    (a context manager): before each tile of :func:`run_tiled` (``"tile"``, tiles done, tiles) and
    between the passes of a self-ensemble (``"pass"``, passes done, passes; :mod:`core.ensemble`)
    and before each row chunk of a whole-image conversion (``"rows"``, rows done, rows).
    The hook may block (to let other work run meanwhile) or raise (e.g. :class:`CancelledError`)."""
    return _thread_setting("hook", hook)


def unlocked_at_steps(lock: threading.Lock):
    """While a step hook of this thread runs, ``lock`` (held by this thread) is released, so that
    other threads may take it meanwhile; the hook's owner makes them take turns. A context manager."""
    return _thread_setting("lock", lock)


def step(kind: str, done: int, total: int) -> None:
    """A step boundary: call this thread's hook, if one is set (see :func:`step_hook`)."""
    hook = getattr(_steps, "hook", None)
    if hook is None:
        return
    lock = getattr(_steps, "lock", None)
    if lock is None:
        hook(kind, done, total)
        return
    lock.release()
    try:
        hook(kind, done, total)
    finally:
        lock.acquire()
