"""Layer conversions (L/LA/RGB/RGBA, 8/16-bit, alpha, luminance) and image files."""

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidImageError, InvalidOptionError
from core.imageio import (
    estimate_jpeg_quality,
    from_gray_float,
    layout_of,
    quantize,
    read_image,
    to_gray_float,
    write_png,
)

rng = np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape,layout", [((5, 7), "L"), ((5, 7, 1), "L"), ((5, 7, 2), "LA"), ((5, 7, 3), "RGB"), ((5, 7, 4), "RGBA")]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_layouts(shape, layout, dtype):
    img = np.zeros(shape, dtype)
    assert layout_of(img) == layout
    plane = to_gray_float(img)
    assert plane.gray.shape == (5, 7) and plane.gray.dtype == np.float32
    assert plane.layout == layout and plane.dtype == dtype


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.float32),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((4,), np.uint8),
        np.zeros((0, 4), np.uint8),
        [[1, 2]],
        np.zeros((2, 2, 2, 2), np.uint8),
    ],
)
def test_bad_layers_are_rejected(bad):
    with pytest.raises(InvalidImageError):
        to_gray_float(bad)


def test_alpha_is_composited_on_white_and_colour_becomes_bt601_luminance():
    rgba = np.array([[[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [0, 0, 0, 0], [0, 0, 0, 51]]], np.uint8)
    p = to_gray_float(rgba)
    np.testing.assert_allclose(p.gray[0], [0.299, 0.587, 0.114, 1.0, 0.8], atol=1e-6)
    assert any("luminance" in n for n in p.notes) and any("white" in n for n in p.notes)
    # gray+alpha: 50 % black over white is mid gray
    la = np.array([[[0, 32768], [65535, 0], [13107, 65535]]], np.uint16)
    np.testing.assert_allclose(to_gray_float(la).gray[0], [1 - 32768 / 65535, 1.0, 0.2], atol=1e-6)
    # matches Pillow's own RGB -> L conversion within rounding
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.float32) / 255
    assert np.abs(to_gray_float(rgb).gray - pil).max() <= 1 / 255 + 1e-6


def test_sixteen_bit_keeps_precision():
    g = np.arange(0, 65536, 7, dtype=np.uint16)[None, :]
    plane = to_gray_float(g)
    back = from_gray_float(plane.gray, "L", np.uint16)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, g)  # no 8-bit step anywhere


def test_quantize_rounds_and_clips():
    x = np.array([[-0.2, 0.0, 0.5 / 255, 0.49 / 255, 1.0, 1.3]], np.float32)
    assert quantize(x, np.uint8).tolist() == [[0, 0, 1, 0, 255, 255]]
    with pytest.raises(InvalidImageError):
        quantize(x, np.float32)


@pytest.mark.parametrize("dtype,white", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("layout", ["L", "LA", "RGB", "RGBA"])
def test_white_background_keeps_layout_and_is_opaque(layout, dtype, white):
    gray = np.array([[0.0, 0.5, 1.0]], np.float32)
    out = from_gray_float(gray, layout, dtype, "white")
    assert out.dtype == dtype
    assert out.shape == ((1, 3) if layout == "L" else (1, 3, len(layout)))
    q = quantize(gray, dtype)
    if layout == "L":
        np.testing.assert_array_equal(out, q)
    else:
        for c in range(3 if layout.startswith("RGB") else 1):
            np.testing.assert_array_equal(out[..., c], q)
    if layout.endswith("A"):
        assert np.all(out[..., -1] == white)


@pytest.mark.parametrize("dtype,white", [(np.uint8, 255), (np.uint16, 65535)])
@pytest.mark.parametrize("layout,channels", [("L", 2), ("LA", 2), ("RGB", 4), ("RGBA", 4)])
def test_transparent_background_is_black_lines_with_coverage_alpha(layout, channels, dtype, white):
    gray = rng.random((6, 9)).astype(np.float32)
    gray[0, 0], gray[0, 1] = 1.0, 0.0
    out = from_gray_float(gray, layout, dtype, "transparent")
    assert out.shape == (6, 9, channels) and out.dtype == dtype
    assert np.all(out[..., :-1] == 0)
    np.testing.assert_array_equal(out[..., -1], white - quantize(gray, dtype))
    assert out[0, 0, -1] == 0 and out[0, 1, -1] == white  # white -> transparent, black -> opaque
    # composited back on white it shows the restored gray again
    a = out[..., -1].astype(np.float64) / white
    assert np.abs((1 - a) - gray).max() <= 0.5 / white + 1e-6


def test_from_gray_float_validates():
    with pytest.raises(InvalidOptionError):
        from_gray_float(np.zeros((2, 2), np.float32), "L", np.uint8, "green")
    with pytest.raises(InvalidImageError):
        from_gray_float(np.zeros((2, 2), np.float32), "CMYK", np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [None, 3, 4, 2])
def test_png_round_trip(tmp_path, dtype, channels):
    hi = 256 if dtype == np.uint8 else 65536
    shape = (7, 11) if channels is None else (7, 11, channels)
    img = rng.integers(0, hi, shape, dtype=dtype)
    p = tmp_path / "x.png"
    write_png(p, img)
    f = read_image(p)
    assert f.format == "PNG" and f.pixels.dtype == dtype and f.jpeg_quality is None
    if dtype == np.uint16 and channels == 2:
        # documented: 16-bit gray+alpha is stored as RGBA with the gray copied into R, G, B
        assert f.pixels.shape == (7, 11, 4)
        np.testing.assert_array_equal(f.pixels[..., 0], img[..., 0])
        np.testing.assert_array_equal(f.pixels[..., 3], img[..., 1])
    else:
        np.testing.assert_array_equal(f.pixels, img)
    assert [q.name for q in tmp_path.iterdir()] == ["x.png"]  # no temporary file left behind


@pytest.mark.parametrize("quality", [10, 37, 50, 75, 95])
def test_jpeg_quality_is_read_from_the_tables(tmp_path, quality):
    p = tmp_path / "q.jpg"
    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(p, quality=quality)
    f = read_image(p)
    assert f.format == "JPEG" and f.pixels.shape == (32, 32) and f.jpeg_quality == quality
    assert estimate_jpeg_quality([1, 2, 3]) is None


def test_palette_bilevel_and_tiff16(tmp_path):
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").pixels.shape == (8, 8, 3)
    Image.fromarray(rng.integers(0, 2, (8, 8), dtype=np.uint8) * 255).convert("1").save(tmp_path / "b.png")
    b = read_image(tmp_path / "b.png").pixels
    assert b.shape == (8, 8) and set(np.unique(b)) <= {0, 255}
    g16 = rng.integers(0, 65536, (8, 8), dtype=np.uint16)
    Image.fromarray(g16).save(tmp_path / "g.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif").pixels, g16)


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((4, 10), np.uint8)
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    (tmp_path / "r.jpg").write_bytes(buf.getvalue())
    assert read_image(tmp_path / "r.jpg").pixels.shape == (10, 4)


def test_unreadable_files(tmp_path):
    with pytest.raises(InvalidImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "t.png").write_text("not an image")
    with pytest.raises(InvalidImageError, match="not a readable image"):
        read_image(tmp_path / "t.png")
    good = tmp_path / "g.png"
    write_png(good, np.zeros((64, 64), np.uint8))
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(InvalidImageError):
        read_image(tmp_path / "cut.png")
