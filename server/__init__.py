"""Local restoration server for the Krita and GIMP plug-ins: ``python -m server``.

Modules (importing this package imports none of them, so ``server.protocol`` and ``server.client``
load without torch or numpy):

* :mod:`server.protocol` - the wire protocol: message dataclasses, msgpack encode/decode, checks.
  Standard library + msgpack + ``core/options.py`` (the option table, read by path) only; the
  plug-ins bundle it.
* :mod:`server.client` - reference clients (blocking and asyncio). Standard library + websockets +
  msgpack + protocol + jpegfile; the plug-ins bundle it.
* :mod:`server.jpegfile` - a JPEG file's luminance quantization table, read from its header
  (standard library only; the client sends it, the plug-ins bundle it).
* :mod:`server.app` - the asyncio WebSocket server, fair queue and inference worker.
* :mod:`server.jobs` - the fair (round-robin per client) job queue.
* :mod:`server.images` - wire pixel formats <-> numpy arrays, PNG decoding with size limits.
"""

from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parent

#: What clients bundle side by side (both plug-ins do), by file name in the bundle -> source file:
#: the protocol, the client, the JPEG table reader, and core's option table, which the protocol
#: reads from ``options.py`` beside it (standard library only).
CLIENT_SOURCES = {
    "protocol.py": _HERE / "protocol.py",
    "client.py": _HERE / "client.py",
    "jpegfile.py": _HERE / "jpegfile.py",
    "options.py": _HERE.parent / "core" / "options.py",
}
#: The file names of the bundle (:data:`CLIENT_SOURCES`).
CLIENT_FILES = tuple(CLIENT_SOURCES)
