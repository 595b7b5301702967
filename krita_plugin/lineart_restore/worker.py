"""Run a function on a worker thread and get its result back on the Qt main thread.

The network step of a restore (and the dialog's "Check server") runs in a ``QThread`` so Krita
stays responsive; results, errors and progress reach the main thread through queued signals.
The function receives a :class:`threading.Event` (cancel) and a progress callback.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QObject, QThread, pyqtSignal

__all__ = ["Worker"]

TaskFn = Callable[[threading.Event, Callable[[float, str], None]], Any]


class _Thread(QThread):
    progress = pyqtSignal(float, str)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object, str)

    def __init__(self, fn: TaskFn, cancel: threading.Event, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fn = fn
        self.cancel = cancel

    def run(self) -> None:  # worker thread
        try:
            result = self.fn(self.cancel, lambda f, text: self.progress.emit(float(f), str(text)))
        except BaseException as e:  # report everything; the main thread decides what to show
            self.failed.emit(e, traceback.format_exc())
        else:
            self.succeeded.emit(result)


class Worker(QObject):
    """Start ``fn(cancel_event, progress)`` on a thread.

    Signals (delivered on the thread that created the Worker, i.e. Krita's main thread):
        progress(fraction, text), succeeded(result), failed(exception, traceback_text),
        done() after either of the two.
    """

    progress = pyqtSignal(float, str)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object, str)
    done = pyqtSignal()

    def __init__(self, fn: TaskFn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._thread = _Thread(fn, self.cancel_event)
        self._thread.progress.connect(self.progress)
        self._thread.succeeded.connect(self._on_success)
        self._thread.failed.connect(self._on_failure)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the task to stop (it checks the event between steps and while waiting)."""
        self.cancel_event.set()

    def _on_success(self, result: object) -> None:
        self._thread.wait()
        self.succeeded.emit(result)
        self.done.emit()

    def _on_failure(self, exc: object, tb: str) -> None:
        self._thread.wait()
        self.failed.emit(exc, tb)
        self.done.emit()
