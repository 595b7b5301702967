"""``python -m server``: load the models once and serve them until Ctrl-C (see docs/server.md).

Examples::

    python -m server                                # loopback, port 8765, CUDA if present else CPU;
                                                    # a per-user token in ~/.local/share/lineart-restore/token
    python -m server --device cpu --port 9000
    python -m server --token s3cret                 # this token (also written to the token file)
    python -m server --no-token                     # no token: any local process may connect
    python -m server --restore-model my.safetensors --model sharp=other.safetensors
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import stat
import sys
from pathlib import Path

from . import protocol
from .client import TOKEN_ENV, is_loopback, token_file

log = logging.getLogger("server")

#: Longest log line written (a client cannot make the log grow faster than this per message).
MAX_LOG_LINE = 4096


class _CappedFormatter(logging.Formatter):
    """Log lines with control characters escaped in the message and cut to ``MAX_LOG_LINE``
    characters: a line is one line, whatever reaches it (tracebacks stay multi-line)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if not text.isprintable():
            text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        return text if len(text) <= MAX_LOG_LINE else text[: MAX_LOG_LINE - 20] + "...(line cut)"


def ensure_token(given: str | None, path: Path | None = None) -> tuple[str, Path]:
    """The server's token and the file that holds it, for clients of this user to read.

    ``given`` (``--token`` or ``$LINEART_RESTORE_TOKEN``) is written to the file; without it the
    file's token is reused when only this user can read the file, else a new random one is made.
    The folder is created 0700 and the file written 0600 (atomically, by a rename)."""
    path = token_file() if path is None else path
    token = given
    if token is None:
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO) == 0 and path.stat().st_uid == os.getuid():
                token = path.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError, AttributeError):
            token = None
    if token is None:
        token = secrets.token_urlsafe(32)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return token, path


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
    p.add_argument(
        "--port", type=int, default=table.DEFAULT_PORT, help=f"port (default: {table.DEFAULT_PORT}; 0 picks a free one)"
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=table.PRECISIONS, help=table.PRECISION_HELP)
    p.add_argument("--engine", default="auto", choices=table.ENGINES, help=table.ENGINE_HELP)
    tok = p.add_mutually_exclusive_group()
    tok.add_argument(
        "--token",
        default=None,
        help=f"the token clients must send (default: ${TOKEN_ENV} if set, else the one in the token "
        f"file, {token_file()}, made at first start; it is written there for local clients)",
    )
    tok.add_argument(
        "--no-token",
        action="store_true",
        help="require no token: any process that can reach the port may use the server",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser Origin allowed to connect (repeatable); by default every browser is refused",
    )
    g = p.add_argument_group("models (default: the shipped weights in core/models/)")
    g.add_argument("--fast", action="store_true", help=table.FAST_HELP)
    g.add_argument("--mask-model", type=Path, help="mask network weights (.safetensors)")
    g.add_argument("--mask-colour-model", metavar="FILE|none", help=table.MASK_COLOUR_HELP)
    g.add_argument("--colour-model", metavar="FILE|none", help=table.COLOUR_MODEL_HELP)
    g.add_argument("--inks-model", metavar="FILE|none", help=table.INKS_MODEL_HELP)
    g.add_argument("--restore-model", type=Path, help="framework-mode restoration backbone (.safetensors)")
    g.add_argument("--baseline-model", type=Path, help="baseline-mode backbone for mask 'none' (.safetensors or .pth)")
    g.add_argument(
        "--model",
        action="append",
        default=[],
        type=_named_model,
        metavar="NAME=PATH",
        help="an extra restoration backbone clients may choose by NAME (repeatable)",
    )
    p.add_argument(
        "--tile",
        type=_positive,
        default=None,
        help="tile side in pixels for every request (default: chosen from free memory)",
    )
    g = p.add_argument_group("limits")
    g.add_argument(
        "--max-pixels",
        type=_positive,
        default=defaults.max_pixels,
        help=f"largest image, width x height (default: {defaults.max_pixels})",
    )
    g.add_argument(
        "--max-message-mb",
        type=_positive,
        default=defaults.max_message_bytes // 2**20,
        help=f"largest message in MiB (default: {defaults.max_message_bytes // 2**20})",
    )
    g.add_argument(
        "--max-fragment-kb",
        type=_positive,
        default=protocol.MAX_FRAGMENT_BYTES // 1024,
        help="largest WebSocket frame in KiB; a longer message comes in fragments, whose header is checked "
        f"before the rest is stored (default: {protocol.MAX_FRAGMENT_BYTES // 1024})",
    )
    g.add_argument(
        "--stall-timeout",
        type=float,
        default=protocol.STALL_TIMEOUT,
        help="seconds a message sent in fragments may go without its next one before the connection is closed "
        f"(default: {protocol.STALL_TIMEOUT:g})",
    )
    g.add_argument(
        "--max-jobs-per-client",
        type=_positive,
        default=defaults.max_jobs_per_client,
        help=f"queued + running requests per connection (default: {defaults.max_jobs_per_client})",
    )
    g.add_argument(
        "--max-queue",
        type=_positive,
        default=defaults.max_queue,
        help=f"queued + running requests in all (default: {defaults.max_queue})",
    )
    g.add_argument(
        "--max-connections",
        type=_positive,
        default=64,
        help="connections open at once; more are refused with HTTP 503 (default: 64)",
    )
    g.add_argument(
        "--max-queued-mb",
        type=_positive,
        default=None,
        help="budget of decoded image data over all queued and running requests, in MiB (default: "
        "from the available memory, 256 to 512)",
    )
    g.add_argument(
        "--max-queued-pixels",
        type=_positive,
        default=None,
        help="budget of pixels over all queued and running requests (default: from the available "
        "memory, one to four 8192x8192 images)",
    )
    g.add_argument(
        "--max-active-jobs",
        type=_positive,
        default=3,
        help="requests of different clients that run at once, taking turns tile by tile (default: 3)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection and message problem")
    return p


def load_restorer(args: argparse.Namespace):
    """The Restorer the arguments ask for: the shipped models (the fast pair with ``--fast``), with
    any named file replacing its role."""
    from core.pipeline import (
        DEFAULT_FILES,
        FAST_FILES,
        MODELS_DIR,
        Restorer,
        colour_files,
        wild_files,
    )

    fast = bool(getattr(args, "fast", False))
    given = {"mask": args.mask_model, "restore": args.restore_model, "baseline": args.baseline_model}
    colour_choice = getattr(args, "mask_colour_model", None)
    colour_backbone = getattr(args, "colour_model", None)
    inks = getattr(args, "inks_model", None)
    if not any(given.values()) and colour_choice is None and colour_backbone is None and inks is None:
        return Restorer.default(device=args.device, precision=args.precision, engine=args.engine, fast=fast)
    paths = {}
    for role, path in given.items():
        shipped = MODELS_DIR / (FAST_FILES if fast else DEFAULT_FILES)[role]
        paths[role] = path if path is not None else (shipped if shipped.is_file() else None)
    colour = colour_files(
        colour_choice,
        colour_backbone,
        inks,
        mask_given=args.mask_model is not None,
        restore_given=fast or args.restore_model is not None,
    )
    # The wild networks go with the shipped default backbone only (the wild_network option).
    wild = wild_files(fast) if args.restore_model is None else {}
    return Restorer.from_files(
        **paths,
        **wild,
        **colour,
        device=args.device,
        precision=args.precision,
        engine=args.engine,
    )


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
    handler = logging.StreamHandler()
    handler.setFormatter(_CappedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    if not args.verbose:
        logging.getLogger("websockets").setLevel(logging.WARNING)
    token = None
    if not args.no_token:
        try:
            token, path = ensure_token(args.token or os.environ.get(TOKEN_ENV) or None)
        except OSError as e:
            log.error("cannot write the token file %s: %s (use --no-token to run without one)", token_file(), e)
            return 2
        log.info("token required; local clients read it from %s", path)
    elif not is_loopback(args.host):
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
            max_connections=args.max_connections,
            max_queued_bytes=args.max_queued_mb * 2**20 if args.max_queued_mb else None,
            max_queued_pixels=args.max_queued_pixels,
            max_active_jobs=args.max_active_jobs,
            max_fragment_bytes=args.max_fragment_kb * 1024,
            stall_timeout=args.stall_timeout,
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
