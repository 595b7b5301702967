"""Shared pytest set-up for the lineart-restore tests.

* torch is never imported here: some test modules (the wire protocol, the exports check) must be
  able to run with torch absent or blocked. When a test module has imported torch, every test runs
  with one intra-op thread, because the CI machine has few cores shared with other jobs.
* ``drawing`` is a small synthetic line drawing whose line pixels are known exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest


def pytest_runtest_setup(item: pytest.Item) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


#: Gray levels used by :func:`make_drawing`.
LINE_BLACK = 0
LINE_GRAY = 40


@pytest.fixture(autouse=True, scope="session")
def _token_file_of_the_tests(tmp_path_factory) -> Iterator[None]:
    """``python -m server`` writes its token file (and clients read it) in a folder of the test
    session, never in the user's own ``~/.local/share/lineart-restore``."""
    import os

    old = os.environ.get("LINEART_RESTORE_TOKEN_FILE")
    os.environ["LINEART_RESTORE_TOKEN_FILE"] = str(tmp_path_factory.mktemp("token") / "token")
    yield
    if old is None:
        os.environ.pop("LINEART_RESTORE_TOKEN_FILE", None)
    else:
        os.environ["LINEART_RESTORE_TOKEN_FILE"] = old


def make_drawing(height: int = 24, width: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A clean uint8 drawing (white = 255) and its exact line mask (uint8, 1 on lines).

    Lines: a black horizontal stroke (row 6, columns 3..width-4), a 2-pixel-wide gray vertical
    stroke (columns 20-21, rows 3..height-4) and a single black dot at (height-5, 5). The image
    needs ``height >= 12`` and ``width >= 26``.
    """
    if height < 12 or width < 26:
        raise ValueError("make_drawing needs at least 12 x 26 pixels")
    img = np.full((height, width), 255, np.uint8)
    img[6, 3 : width - 3] = LINE_BLACK
    img[3 : height - 3, 20:22] = LINE_GRAY
    img[height - 5, 5] = LINE_BLACK
    return img, (img < 255).astype(np.uint8)


@pytest.fixture
def drawing() -> tuple[np.ndarray, np.ndarray]:
    """``(image, mask)`` from :func:`make_drawing` at its default 24 x 32 size."""
    return make_drawing()


@pytest.fixture
def drawing_factory():
    """:func:`make_drawing` itself, for tests that need another size."""
    return make_drawing


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so that every "random" test input is the same on every run."""
    return np.random.default_rng(20240611)


#: The last commit of this project before ``Options.ensemble`` existed: its server is "an older
#: server" for the compatibility tests (a newer client and plug-ins against it).
PRE_ENSEMBLE_COMMIT = "b94becd16c5571f34220d93b34e10dc1ec51afab"


@pytest.fixture(scope="session")
def older_server_url(tmp_path_factory) -> Iterator[str]:
    """``ws://`` URL of a real server from :data:`PRE_ENSEMBLE_COMMIT`, running on loopback.

    Its ``server`` and ``core`` folders (shipped weights included) come from this checkout's git
    history through ``git archive`` and run in a subprocess with this Python. Skipped where that
    history is missing (a source archive, a shallow clone)."""
    import io
    import shutil
    import socket
    import subprocess
    import tarfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    git = shutil.which("git")
    if (
        git is None
        or subprocess.run(
            [git, "-C", str(root), "cat-file", "-e", f"{PRE_ENSEMBLE_COMMIT}^{{commit}}"], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip(
            f"needs commit {PRE_ENSEMBLE_COMMIT[:7]} of lineart-restore's git history (the server from "
            "before the ensemble option), which this checkout lacks: a source archive or a shallow clone"
        )
    tree = tmp_path_factory.mktemp("older_server")
    archive = subprocess.run(
        [git, "-C", str(root), "archive", PRE_ENSEMBLE_COMMIT, "server", "core"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+ / 3.11.4+: refuse odd members
            tar.extractall(tree, filter="data")
        else:
            tar.extractall(tree)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    from tests.subprocess_server import server_process

    with server_process(cmd, tree, tree / "server.log", port, 120, "the older server") as url:
        yield url
