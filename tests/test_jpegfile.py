"""server/jpegfile.py: a JPEG file's luminance quantization table, read from its header.

Pillow (a real libjpeg encoder and its own header parser) is the reference: for every file it
writes, ``luma_table`` must give what ``Image.quantization`` gives for the first component's table.
Broken and hostile files must give ``None`` and never raise.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.imageio import read_image
from server.jpegfile import ZIGZAG, luma_table

DATA = Path(__file__).resolve().parent / "data"


def _jpeg(mode: str = "L", **save) -> bytes:
    rng = np.random.default_rng(0)
    shape = (40, 56) if mode == "L" else (40, 56, 3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "JPEG", **save)
    return buf.getvalue()


def _pillow_luma(data: bytes) -> tuple[int, ...]:
    return tuple(Image.open(io.BytesIO(data)).quantization[0])


def _segments(data: bytes):
    """(offset of the 0xFF, marker, segment length) of each marker segment before the scan."""
    i = 2
    while True:
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        yield i, marker, length
        if marker == 0xDA:
            return
        i += 2 + length


def test_zigzag_is_a_permutation_that_walks_the_diagonals():
    assert sorted(ZIGZAG) == list(range(64))
    assert ZIGZAG[:10] == (0, 1, 8, 16, 9, 2, 3, 10, 17, 24)
    assert ZIGZAG[-3:] == (55, 62, 63)
    for a, b in zip(ZIGZAG, ZIGZAG[1:]):  # each step moves to a neighbouring cell
        assert max(abs(a // 8 - b // 8), abs(a % 8 - b % 8)) == 1


CUSTOM = [[(3 * i) % 97 + 1 for i in range(64)], [((5 * i) % 61) + 2 for i in range(64)]]


@pytest.mark.parametrize(
    "mode, save",
    [
        ("L", {"quality": 10}),
        ("L", {"quality": 93}),
        ("L", {"quality": 60, "progressive": True}),
        ("L", {"qtables": CUSTOM[:1]}),  # another encoder's table: not an IJG one
        ("L", {"qtables": [[260 + i for i in range(64)]]}),  # 16-bit steps
        ("RGB", {"quality": 35}),
        ("RGB", {"quality": 80, "subsampling": 0, "optimize": True}),
        ("RGB", {"qtables": CUSTOM}),
        ("RGB", {"quality": 50, "exif": b"Exif\x00\x00" + b"\x00" * 2000, "icc_profile": b"\x00" * 70000}),
    ],
    ids=str,
)
def test_matches_pillow(mode, save):
    data = _jpeg(mode, **save)
    assert luma_table(data) == _pillow_luma(data)


def test_custom_table_in_natural_order():
    data = _jpeg("L", qtables=CUSTOM[:1])
    assert luma_table(data) == tuple(CUSTOM[0])


def test_path_and_bytes_agree_with_the_cli_reader(tmp_path):
    for jpeg in sorted(DATA.glob("*.jpg")):
        t = luma_table(jpeg)
        assert t is not None and t == luma_table(jpeg.read_bytes()) == read_image(jpeg).jpeg_table, jpeg.name
    path = tmp_path / "custom.jpeg"
    path.write_bytes(_jpeg("RGB", qtables=CUSTOM))
    assert luma_table(path) == luma_table(str(path)) == tuple(CUSTOM[0])


def test_first_component_decides_which_table():
    """A file whose Y component uses table slot 1 (and chroma slot 0) gives slot 1's table."""
    data = bytearray(_jpeg("RGB", qtables=CUSTOM))
    for off, marker, _length in _segments(bytes(data)):
        if marker == 0xC0:
            comps = off + 4 + 6  # after length, precision, height, width, count
            assert data[comps + 2] == 0 and data[comps + 5] == 1
            data[comps + 2], data[comps + 5], data[comps + 8] = 1, 0, 0
    assert luma_table(bytes(data)) == tuple(CUSTOM[1])


def test_fill_bytes_before_a_marker_are_allowed():
    data = _jpeg("L", quality=40)
    assert luma_table(data[:2] + b"\xff\xff\xff" + data[2:]) == _pillow_luma(data)


@pytest.mark.parametrize("what", ["not_jpeg", "png", "empty", "lossless", "zero_step", "bad_precision", "eoi"])
def test_files_without_a_usable_table_give_none(what, tmp_path):
    base = _jpeg("L", quality=40)
    if what == "not_jpeg":
        data = b"GIF89a" + base[6:]
    elif what == "png":
        buf = io.BytesIO()
        Image.new("L", (8, 8), 255).save(buf, "PNG")
        data = buf.getvalue()
    elif what == "empty":
        data = b""
    else:
        data = bytearray(base)
        for off, marker, _length in _segments(base):
            if what == "lossless" and marker == 0xC0:
                data[off + 1] = 0xC3
            elif what in ("zero_step", "bad_precision") and marker == 0xDB:
                if what == "zero_step":
                    data[off + 5] = 0
                else:
                    data[off + 4] = 0x20  # precision 2 does not exist
            elif what == "eoi" and marker == 0xC0:
                data[off + 1] = 0xD9  # the stream ends before any frame
        data = bytes(data)
    assert luma_table(data) is None
    (tmp_path / "f.jpg").write_bytes(data)
    assert luma_table(tmp_path / "f.jpg") is None


def test_every_truncation_gives_none_or_the_table():
    data = _jpeg("RGB", quality=45)
    want = _pillow_luma(data)
    scan = next(off for off, marker, _ in _segments(data) if marker == 0xDA)
    for n in range(len(data)):
        got = luma_table(data[:n])
        # The table is known once the scan header's length has been read.
        assert got == (want if n >= scan + 4 else None), n


def test_hostile_headers_give_none_quickly():
    assert luma_table(b"\xff\xd8" + b"\xff\xe1\x00\x02" * 10000) is None  # endless empty segments
    assert luma_table(b"\xff\xd8\xff\xdb\x00\x01") is None  # length shorter than itself
    assert luma_table(b"\xff\xd8\xff\xdb\xff\xff" + b"\x00" * 10) is None  # DQT longer than the file
    assert luma_table(b"\xff\xd8" + b"\xff" * 100000) is None  # fill bytes to the end
    assert luma_table(Path("/nonexistent/drawing.jpg")) is None
