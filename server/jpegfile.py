"""Read the luminance quantization table of a JPEG file without decoding it.

For clients (the Krita and GIMP plug-ins, scripts): when the layer being restored was opened from a
JPEG file, the file's own table lets the server's JPEG-consistency step work for any encoder and
quality (``Options.jpeg_table``), not only for the standard IJG tables it can find in the pixels.
Like ``protocol``, this module imports only the standard library, so the plug-ins bundle it as is.

Only the markers before the first scan are read (one segment at a time, seeking past the rest), so
the cost does not depend on the file's size. A file that is not a DCT JPEG, or whose header is
truncated or malformed, gives ``None``: the table is a hint, and the caller simply goes without it.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

__all__ = ["ZIGZAG", "luma_table", "read_luma_table"]


def _zigzag() -> tuple[int, ...]:
    """Natural (row-major) index of each of the 64 positions in JPEG's zigzag scan order."""
    order: list[int] = []
    for s in range(15):  # anti-diagonals y + x = s, alternating direction
        cells = [(y, s - y) for y in range(8) if 0 <= s - y < 8]
        if s % 2 == 0:
            cells.reverse()  # even diagonals run from bottom-left to top-right
        order.extend(8 * y + x for y, x in cells)
    return tuple(order)


#: ``ZIGZAG[k]`` is the natural index of the k-th coefficient stored in a DQT segment.
ZIGZAG = _zigzag()

# Start-of-frame markers of DCT-based processes (baseline, extended, progressive; Huffman or
# arithmetic). Lossless (C3, CB) and hierarchical (C5-C7, CD-CF) frames are not served.
_DCT_FRAMES = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}
_OTHER_FRAMES = {0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RST0-7 carry no length
_MAX_SEGMENTS = 4096  # a real header has tens; this bounds a hostile file's cost


def _read_exact(f: BinaryIO, n: int) -> bytes | None:
    data = f.read(n)
    return data if len(data) == n else None


def _parse_dqt(body: bytes, tables: dict[int, tuple[int, ...]]) -> bool:
    """Add the tables of one DQT segment (several may share it); False when malformed."""
    i = 0
    while i < len(body):
        precision, slot = body[i] >> 4, body[i] & 0x0F
        i += 1
        if precision > 1 or slot > 3:
            return False
        size = 64 * (precision + 1)
        chunk = body[i : i + size]
        if len(chunk) != size:
            return False
        i += size
        stored = chunk if precision == 0 else [(chunk[2 * k] << 8) | chunk[2 * k + 1] for k in range(64)]
        natural = [0] * 64
        for k, v in enumerate(stored):
            natural[ZIGZAG[k]] = v
        tables[slot] = tuple(natural)
    return True


def read_luma_table(f: BinaryIO) -> tuple[int, ...] | None:
    """The quantization table of the first colour component (luminance, or the only gray one) of
    the JPEG stream ``f``, as 64 steps in natural row-major order; ``None`` when there is none.

    ``f`` is read from its current position, which must be the file's start (the SOI marker).
    """
    if _read_exact(f, 2) != b"\xff\xd8":
        return None
    tables: dict[int, tuple[int, ...]] = {}
    luma_slot: int | None = None
    for _ in range(_MAX_SEGMENTS):
        if _read_exact(f, 1) != b"\xff":
            return None
        marker = 0xFF
        while marker == 0xFF:  # any number of fill bytes may precede a marker
            byte = _read_exact(f, 1)
            if byte is None:
                return None
            marker = byte[0]
        if marker in _STANDALONE:
            continue
        if marker in (0xD8, 0xD9, 0x00):  # a second SOI, EOI before any scan, a stuffed byte
            return None
        head = _read_exact(f, 2)
        if head is None:
            return None
        length = (head[0] << 8) | head[1]
        if length < 2:
            return None
        if marker == 0xDA:  # start of scan: every table the first scan needs is defined by now
            break
        if marker == 0xDB or marker in _DCT_FRAMES:
            body = _read_exact(f, length - 2)
            if body is None:
                return None
            if marker == 0xDB:
                if not _parse_dqt(body, tables):
                    return None
            else:
                # SOF: precision, height, width, component count, then 3 bytes a component
                # (id, sampling factors, table slot); the first component is Y (or gray).
                if len(body) < 9 or body[5] < 1:
                    return None
                luma_slot = body[8]
        elif marker in _OTHER_FRAMES:
            return None
        else:
            f.seek(length - 2, io.SEEK_CUR)
    else:
        return None
    if luma_slot is None or luma_slot not in tables:
        return None
    table = tables[luma_slot]
    if min(table) < 1:  # a zero step cannot have been used for quantizing
        return None
    return table


def luma_table(source: str | os.PathLike | bytes) -> tuple[int, ...] | None:
    """:func:`read_luma_table` of a file path or of a file's bytes. Never raises for a file that
    cannot be read or is not a JPEG: it returns ``None``."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return read_luma_table(io.BytesIO(bytes(source)))
        with open(source, "rb") as f:
            return read_luma_table(f)
    except (OSError, ValueError):
        return None
