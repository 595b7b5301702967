"""``python -m server``: load the models once and serve them until Ctrl-C (see docs/server.md).

Examples::

    python -m server                                # loopback, port 8765, CUDA if present else CPU
    python -m server --device cpu --port 9000
    python -m server --token s3cret                 # clients must send the same token
    python -m server --restore-model my.safetensors --model sharp=other.safetensors
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from . import protocol

log = logging.getLogger("server")

TOKEN_ENV = "LINEART_RESTORE_TOKEN"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _named_model(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def build_parser() -> argparse.ArgumentParser:
    defaults = protocol.Limits()
    table = protocol.option_table
    p = argparse.ArgumentParser(
        prog="python -m server",
        description="Local WebSocket + msgpack server restoring JPEG-damaged line art for the Krita and GIMP "
        "plug-ins (protocol: docs/protocol.md).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=table.DEFAULT_PORT,
                   help=f"port (default: {table.DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=table.PRECISIONS, help=table.PRECISION_HELP)
    p.add_argument("--engine", default="auto", choices=table.ENGINES, help=table.ENGINE_HELP)
    p.add_argument("--token", default=None,
                   help=f"shared secret clients must send (default: ${TOKEN_ENV} if set, else none)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="a browser Origin allowed to connect (repeatable); by default every browser is refused")
    g = p.add_argument_group("models (default: the shipped weights in core/models/)")
    g.add_argument("--fast", action="store_true", help=table.FAST_HELP)
    g.add_argument("--mask-model", type=Path, help="mask network weights (.safetensors)")
    g.add_argument("--restore-model", type=Path, help="framework-mode restoration backbone (.safetensors)")
    g.add_argument("--baseline-model", type=Path, help="baseline-mode backbone for mask 'none' (.safetensors or .pth)")
    g.add_argument("--model", action="append", default=[], type=_named_model, metavar="NAME=PATH",
                   help="an extra restoration backbone clients may choose by NAME (repeatable)")
    p.add_argument("--tile", type=_positive, default=None,
                   help="tile side in pixels for every request (default: chosen from free memory)")
    g = p.add_argument_group("limits")
    g.add_argument("--max-pixels", type=_positive, default=defaults.max_pixels,
                   help=f"largest image, width x height (default: {defaults.max_pixels})")
    g.add_argument("--max-message-mb", type=_positive, default=defaults.max_message_bytes // 2**20,
                   help=f"largest message in MiB (default: {defaults.max_message_bytes // 2**20})")
    g.add_argument("--max-jobs-per-client", type=_positive, default=defaults.max_jobs_per_client,
                   help=f"queued + running requests per connection (default: {defaults.max_jobs_per_client})")
    g.add_argument("--max-queue", type=_positive, default=defaults.max_queue,
                   help=f"queued + running requests in all (default: {defaults.max_queue})")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection and message problem")
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_restorer(args: argparse.Namespace):
    """The Restorer the arguments ask for: the shipped models (the fast pair with ``--fast``), with
    any named file replacing its role."""
    from core.pipeline import DEFAULT_FILES, FAST_FILES, MODELS_DIR, Restorer

    fast = bool(getattr(args, "fast", False))
    given = {"mask": args.mask_model, "restore": args.restore_model, "baseline": args.baseline_model}
    if not any(given.values()):
        return Restorer.default(device=args.device, precision=args.precision, engine=args.engine, fast=fast)
    paths = {}
    for role, path in given.items():
        shipped = MODELS_DIR / (FAST_FILES if fast else DEFAULT_FILES)[role]
        paths[role] = path if path is not None else (shipped if shipped.is_file() else None)
    return Restorer.from_files(**paths, device=args.device, precision=args.precision, engine=args.engine)


async def _serve(server) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second interrupt: quitting without waiting for the running tile")
            os._exit(130)
        log.info("stopping after the running tile (interrupt again to quit at once)")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C arrives as KeyboardInterrupt
            pass
    await server.serve_until(stop)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("websockets").setLevel(logging.WARNING)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not _is_loopback(args.host) and token is None:
        log.warning("listening on %s without a token: anyone who can reach this address can use the server", args.host)

    from core.errors import RestoreError

    from .app import RestoreServer

    try:
        restorer = load_restorer(args)
        server = RestoreServer(
            restorer,
            host=args.host,
            port=args.port,
            token=token,
            allowed_origins=args.allow_origin,
            limits=protocol.Limits(
                max_message_bytes=args.max_message_mb * 2**20 + 2**16,
                max_pixels=args.max_pixels,
                max_jobs_per_client=args.max_jobs_per_client,
                max_queue=args.max_queue,
            ),
            models=dict(args.model),
            tile=args.tile,
        )
    except (RestoreError, OSError, ValueError) as e:
        log.error("cannot start: %s", e)
        return 2
    try:
        asyncio.run(_serve(server))
    except OSError as e:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, e)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
