"""A real ``python -m server`` in a subprocess, for the tests that need one outside this process."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator

import pytest

from server import client


@contextlib.contextmanager
def server_process(
    cmd: list[str], cwd, log_path, port: int, wait_s: float, what: str = "the server", env: dict | None = None
) -> Iterator[str]:
    """Run ``python -m server`` (``cmd``) in a subprocess until the ``with`` ends; yields its URL once a
    client gets its welcome. Its output goes to ``log_path``, whose end a failure to start quotes."""
    url = f"ws://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"{what} exited ({proc.returncode}): {open(log_path).read()[-2000:]}")
                try:
                    with client.Client(url, open_timeout=2):
                        break
                except client.ServerUnavailableError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"{what} did not start in {wait_s:.0f} s: {open(log_path).read()[-2000:]}")
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stop_pid(pid_file) -> bool:
    """Stop (TERM, then KILL after 10 s) the process whose id ``pid_file`` holds, e.g. a server a
    plug-in started detached; returns whether it was still running."""
    import os
    import signal
    from pathlib import Path

    pid_file = Path(pid_file)
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def save_slim_models(folder, seed: int = 0) -> tuple:
    """Random-weight slim models (mask, framework backbone, baseline backbone) saved in ``folder``
    as the shipped files are; returns their paths. Fast to load, for servers in tests."""
    from pathlib import Path

    import torch

    from core.backbones import build_backbone
    from core.masknet import build_masknet
    from core.weights import save_model

    folder = Path(folder)
    torch.manual_seed(seed)
    paths = (folder / "mask.safetensors", folder / "restore.safetensors", folder / "baseline.safetensors")
    save_model(build_masknet("blind", "slim"), paths[0])
    save_model(build_backbone("drunet", "slim", "framework"), paths[1])
    save_model(build_backbone("drunet", "slim", "baseline"), paths[2])
    return paths


def model_args(paths) -> list[str]:
    """``--mask-model``, ``--restore-model`` and ``--baseline-model`` for the three weight files
    ``paths`` (as :func:`save_slim_models` returns them): the same flags for the server, the
    command line and ``python -m training evaluate``."""
    mask, restore, baseline = paths
    return ["--mask-model", str(mask), "--restore-model", str(restore), "--baseline-model", str(baseline)]


def slim_server_args(folder, seed: int = 0) -> list[str]:
    """``python -m server`` arguments for :func:`save_slim_models` on the CPU."""
    return ["--device", "cpu", *model_args(save_slim_models(folder, seed))]
