"""Local restoration server for the Krita and GIMP plug-ins: ``python -m server``.

Modules (importing this package imports none of them, so ``server.protocol`` and ``server.client``
load without torch or numpy):

* :mod:`server.protocol` - the wire protocol: message dataclasses, msgpack encode/decode, checks.
  Standard library + msgpack only; the plug-ins bundle it.
* :mod:`server.client` - reference clients (blocking and asyncio). Standard library + websockets +
  msgpack + protocol + jpegfile; the plug-ins bundle it.
* :mod:`server.jpegfile` - a JPEG file's luminance quantization table, read from its header
  (standard library only; the client sends it, the plug-ins bundle it).
* :mod:`server.app` - the asyncio WebSocket server, fair queue and inference worker.
* :mod:`server.jobs` - the fair (round-robin per client) job queue.
* :mod:`server.images` - wire pixel formats <-> numpy arrays, PNG decoding with size limits.
"""

#: The files of this folder that clients bundle side by side (both plug-ins do).
CLIENT_FILES = ("protocol.py", "client.py", "jpegfile.py")
