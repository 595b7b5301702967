"""The plug-in's Qt widgets: the options dialog and the (non-modal) progress window.

Widgets only; what happens on OK lives in ``extension`` (Krita glue) and ``restore`` (logic).
"""

from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressDialog,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .settings import ENSEMBLE_SIZES, MASK_METHODS, OPTIONS, Settings

__all__ = ["RestoreDialog", "ProgressDialog", "MASK_LABELS", "QUALITY_LABELS"]

#: Words shown for the protocol's mask method names (``core/options.py``).
MASK_LABELS = dict(zip(OPTIONS.BY_NAME["mask"].choices, OPTIONS.BY_NAME["mask"].choice_labels))
#: Words shown for the self-ensemble sizes (``core/options.py``).
QUALITY_LABELS = dict(zip(OPTIONS.BY_NAME["ensemble"].choices, OPTIONS.BY_NAME["ensemble"].choice_labels))
DEFAULT_MODEL_LABEL = "(server default)"


def _label(name: str) -> str:
    return OPTIONS.BY_NAME[name].label + ":"


class RestoreDialog(QDialog):
    """Options for one run. ``settings()`` returns the choices; ``check_requested`` is emitted
    through the "Check server" button's ``clicked`` (the owner connects it)."""

    def __init__(self, settings: Settings, target_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Restore JPEG Line Art")
        self.setObjectName("lineart_restore_dialog")

        outer = QVBoxLayout(self)
        if target_text:
            target = QLabel(target_text)
            target.setWordWrap(True)
            outer.addWidget(target)

        form = QFormLayout()
        outer.addLayout(form)

        self.server = QLineEdit(settings.server)
        self.server.setToolTip("Address of the restore server (Start server starts one on this computer)")
        self.check_button = QPushButton("Check server")
        self.start_button = QPushButton("Start server")
        self.start_button.setToolTip("Start the restore server on this computer (it keeps running after Krita closes)")
        row = QHBoxLayout()
        row.addWidget(self.server, 1)
        row.addWidget(self.check_button)
        row.addWidget(self.start_button)
        form.addRow("Server:", row)

        self.auto_start = QCheckBox("Start the server when it is not running")
        self.auto_start.setChecked(settings.auto_start)
        form.addRow("", self.auto_start)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        form.addRow("", self.status)
        self._server_python = settings.server_python

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItem(DEFAULT_MODEL_LABEL, "")
        if settings.model:
            self.model.addItem(settings.model, settings.model)
            self.model.setCurrentIndex(1)
        form.addRow("Model:", self.model)

        self.mask = QComboBox()
        self._fill_masks(MASK_METHODS, settings.mask_method)
        form.addRow(_label("mask"), self.mask)

        self.quality = QComboBox()
        self.quality.setToolTip(
            "More passes restore the drawing several times, flipped and turned, and average the\n"
            "results: a little more exact where the JPEG damage is mild, and up to that many times slower."
        )
        self._fill_quality(ENSEMBLE_SIZES, settings.ensemble)
        form.addRow(_label("ensemble"), self.quality)

        self.threshold = QCheckBox("Snap near-white pixels to white above")
        self.threshold.setChecked(settings.threshold)
        self.theta = QSpinBox()
        self.theta.setRange(0, 255)
        self.theta.setValue(settings.theta)
        self.theta.setEnabled(settings.threshold)
        self.threshold.toggled.connect(self.theta.setEnabled)
        trow = QHBoxLayout()
        trow.addWidget(self.threshold)
        trow.addWidget(self.theta)
        trow.addStretch(1)
        form.addRow("Threshold:", trow)

        self.bg_white = QRadioButton(OPTIONS.BY_NAME["background"].label_of("white"))
        self.bg_transparent = QRadioButton(OPTIONS.BY_NAME["background"].label_of("transparent"))
        (self.bg_transparent if settings.background == "transparent" else self.bg_white).setChecked(True)
        brow = QHBoxLayout()
        brow.addWidget(self.bg_white)
        brow.addWidget(self.bg_transparent)
        brow.addStretch(1)
        form.addRow(_label("background"), brow)

        self.add_mask = QCheckBox('Also add a "line mask" layer')
        self.add_mask.setChecked(settings.add_mask_layer)
        form.addRow("", self.add_mask)

        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Restore")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)

    def _fill_masks(self, methods, current: str) -> None:
        self.mask.clear()
        for m in methods:
            self.mask.addItem(MASK_LABELS.get(m, m), m)
        idx = self.mask.findData(current)
        self.mask.setCurrentIndex(idx if idx >= 0 else 0)

    def _fill_quality(self, sizes, current: int) -> None:
        self.quality.clear()
        for n in sizes:
            self.quality.addItem(QUALITY_LABELS.get(n, f"{n} passes"), n)
        idx = self.quality.findData(current)
        self.quality.setCurrentIndex(idx if idx >= 0 else 0)

    def show_server(
        self, models: list[str], masks: list[str], text: str, ensemble_sizes: list[int] | None = None
    ) -> None:
        """Fill the model, mask and quality lists from a server's welcome and show ``text``."""
        current_model = self.model.currentData() or ""
        current_mask = self.mask.currentData() or ""
        if ensemble_sizes is not None:
            self._fill_quality(ensemble_sizes or [1], self.quality.currentData() or 1)
        self.model.clear()
        self.model.addItem(DEFAULT_MODEL_LABEL, "")
        for name in models:
            self.model.addItem(name, name)
        idx = self.model.findData(current_model)
        self.model.setCurrentIndex(idx if idx >= 0 else 0)
        self._fill_masks(masks or MASK_METHODS, current_mask)
        self.show_status(text)

    def show_status(self, text: str) -> None:
        """Show ``text`` under the address; the dialog grows so that all of it is visible."""
        self.status.setText(text)
        layout = self.layout()
        layout.activate()
        need = layout.totalHeightForWidth(self.width())
        if need > self.height():
            self.resize(self.width(), need)

    def settings(self) -> Settings:
        """The dialog's current choices (not yet checked)."""
        model = self.model.currentData()
        if model is None or self.model.currentText() != self.model.itemText(self.model.currentIndex()):
            model = self.model.currentText().strip()
        if model == DEFAULT_MODEL_LABEL:
            model = ""
        return Settings(
            server=self.server.text().strip(),
            model=model or "",
            mask_method=self.mask.currentData() or "learnt",
            threshold=self.threshold.isChecked(),
            theta=self.theta.value(),
            background="transparent" if self.bg_transparent.isChecked() else "white",
            add_mask_layer=self.add_mask.isChecked(),
            ensemble=int(self.quality.currentData() or 1),
            auto_start=self.auto_start.isChecked(),
            server_python=self._server_python,
        )


class ProgressDialog(QProgressDialog):
    """A progress bar with a Cancel button, 0..1000 for fractions 0..1. Non-modal: the canvas,
    the menus and other documents stay usable while a job runs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Starting...", "Cancel", 0, 1000, parent)
        self.setWindowTitle("Restore JPEG Line Art")
        self.setObjectName("lineart_restore_progress")
        self.setWindowModality(Qt.NonModal)
        self.setMinimumWidth(420)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setValue(0)

    def update_progress(self, fraction: float, text: str) -> None:
        self.setLabelText(text)
        self.setValue(int(round(max(0.0, min(1.0, fraction)) * 1000)))
