"""The wire protocol (server/protocol.py) on bytes alone: no server, no torch, no numpy."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import protocol as p


def _raw(message: p.Message) -> dict:
    return msgpack.unpackb(p.encode(message), raw=False)


def _pack(d: dict) -> bytes:
    return msgpack.packb(d, use_bin_type=True)


def _decode_error(d: dict | bytes) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        p.decode(d if isinstance(d, bytes) else _pack(d))
    return info.value


EXAMPLES = [
    p.Hello(client="krita-plugin 0.1"),
    p.Hello(),
    p.Welcome(
        server_version="0.1.0",
        device="cpu",
        models=["default", "sharp"],
        formats=[str(f) for f in p.PixelFormat],
        options=p.options_schema(["learnt", "otsu"], ["default", "sharp"]),
        limits=p.Limits(max_pixels=100),
        info={"device": "cpu", "models": {"mask": {"parameters": 12, "needs_qf": False}}, "list": [1, 2.5, None]},
    ),
    p.Restore(id="r1", width=3, height=2, format=p.PixelFormat.GRAY8, data=bytes(range(6))),
    p.Restore(
        id="r2",
        width=2,
        height=2,
        format=p.PixelFormat.RGBA16,
        data=bytes(32),
        options=p.Options(
            mask=p.MaskMethod.OTSU_D,
            threshold=False,
            theta=200,
            qf=35,
            background=p.Background.TRANSPARENT,
            return_mask=False,
            model="sharp",
            jpeg_consistency=False,
            jpeg_table=list(range(1, 65)),
            normalize_ink=False,
        ),
    ),
    p.Restore(id="png", width=1, height=1, format=p.PixelFormat.PNG, data=b"\x89PNG\r\n\x1a\n" + bytes(40)),
    p.Cancel(id="r1"),
    p.Queued(id="r1", position=2, depth=5),
    p.Progress(id="r1", fraction=0.25),
    p.Result(
        id="r1",
        width=2,
        height=1,
        format=p.PixelFormat.GRAYA8,
        data=bytes(4),
        mask=b"\x00\xff",
        qf_estimate=31.5,
        timings={"restore": 0.5},
        notes=["colour input restored on luminance"],
    ),
    p.Result(id="r2", width=1, height=1, format=p.PixelFormat.BGRA8, data=bytes(4)),
    p.Error(code="invalid_image", message="bad", id="r1"),
    p.Error(code="bad_message", message="not msgpack"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.TYPE)
def test_every_message_round_trips(message):
    data = p.encode(message)
    assert isinstance(data, bytes)
    back = p.decode(data)
    assert back == message and type(back) is type(message)
    raw = _raw(message)
    assert raw["type"] == message.TYPE and raw["v"] == p.PROTOCOL_VERSION


def test_every_message_type_has_an_example():
    assert {m.TYPE for m in EXAMPLES} == set(p.MESSAGE_TYPES)


def test_pixels_travel_as_raw_bytes_not_base64():
    data = bytes(range(256)) * 4
    msg = p.Restore(id="x", width=32, height=32, format="gray8", data=data)
    encoded = p.encode(msg)
    assert data in encoded  # the bytes appear verbatim (msgpack bin), no text encoding
    assert len(encoded) < len(data) + 200


def test_enums_are_sent_as_their_names():
    raw = _raw(EXAMPLES[4])
    assert raw["format"] == "rgba16"
    assert raw["options"]["mask"] == "otsu_d" and raw["options"]["background"] == "transparent"


def test_fields_at_their_default_stay_off_the_wire():
    """Only what differs from the default travels, so a request that leaves an option newer than
    the server at its default is understood there; the receiver fills the rest back in."""
    plain = p.Restore(id="r1", width=1, height=1, format=p.PixelFormat.GRAY8, data=b"\xff")
    assert "options" not in _raw(plain)
    assert p.decode(p.encode(plain)) == plain
    chosen = dataclasses.replace(
        plain, options=p.Options(ensemble=2, threshold=False, theta=251, mask=p.MaskMethod.OTSU, jpeg_table=[3] * 64)
    )
    assert _raw(chosen)["options"] == {"ensemble": 2, "threshold": False, "mask": "otsu", "jpeg_table": [3] * 64}
    assert p.decode(p.encode(chosen)) == chosen
    assert p.non_default_options(chosen.options) == _raw(chosen)["options"]
    assert p.non_default_options(p.Options()) == {}
    welcome = dataclasses.replace(EXAMPLES[2], info={})
    assert "info" not in _raw(welcome) and p.decode(p.encode(welcome)) == welcome
    # required fields are always sent, even when they hold a "default-looking" value
    assert _raw(p.Cancel(id="r1"))["id"] == "r1"


def test_format_sizes_and_alpha():
    assert p.expected_size("gray8", 3, 2) == 6
    assert p.expected_size("graya16", 3, 2) == 24
    assert p.expected_size("rgb8", 3, 2) == 18
    assert p.expected_size("bgra16", 3, 2) == 48
    assert p.expected_size("png", 3, 2) is None
    assert p.with_alpha("gray8") is p.PixelFormat.GRAYA8
    assert p.with_alpha("gray16") is p.PixelFormat.GRAYA16
    assert p.with_alpha("rgb8") is p.PixelFormat.RGBA8
    assert p.with_alpha("rgb16") is p.PixelFormat.RGBA16
    for fmt in ("graya8", "rgba8", "bgra16", "png"):
        assert p.with_alpha(fmt) is p.PixelFormat(fmt)
    assert set(p.RAW_FORMATS) == set(p.PixelFormat) - {p.PixelFormat.PNG}
    assert str(p.PixelFormat.RGBA8) == "rgba8"


def test_byte_count_must_match_width_height_and_channels():
    good = _raw(EXAMPLES[3])
    for size in (0, 5, 7, 12):
        err = _decode_error({**good, "data": bytes(size)})
        assert err.code == "invalid_image" and err.request_id == "r1"
        assert "6" in err.message  # says how many bytes were needed
    err = _decode_error({**good, "format": "rgb8"})  # 6 bytes are not 3x2 rgb8
    assert err.code == "invalid_image"
    err = _decode_error({**good, "width": 0, "data": b""})
    assert err.code == "invalid_image"
    err = _decode_error({**_raw(EXAMPLES[5]), "data": b"GIF89a" + bytes(40)})
    assert err.code == "invalid_image" and "PNG" in err.message


@pytest.mark.parametrize(
    "options, words",
    [
        ({"mask": "magic"}, "mask"),
        ({"theta": 300}, "theta"),
        ({"theta": "251"}, "theta"),
        ({"qf": 0}, "qf"),
        ({"qf": 101}, "qf"),
        ({"threshold": 1}, "threshold"),
        ({"background": "black"}, "background"),
        ({"model": ""}, "model"),
        ({"tile": 64}, "tile"),  # an option the protocol does not have (server-side setting)
        ({"path": "/etc/passwd"}, "path"),
        ({"jpeg_table": [16] * 63}, "64 quantization steps"),
        ({"jpeg_table": [0] + [16] * 63}, "1..65535"),
        ({"jpeg_table": [70000] * 64}, "1..65535"),
        ({"jpeg_table": [True] * 64}, "a list of integers"),
        ({"jpeg_table": b"\x10" * 64}, "a list of integers"),
        ({"ensemble": 3}, "ensemble"),
        ({"ensemble": True}, "ensemble"),
        ({"ensemble": "8"}, "ensemble"),
    ],
)
def test_bad_or_unknown_options_are_invalid_option(options, words):
    err = _decode_error({**_raw(EXAMPLES[3]), "options": options})
    assert err.code == "invalid_option" and words in err.message and err.request_id == "r1"


def test_partial_options_take_defaults():
    msg = p.decode(_pack({**_raw(EXAMPLES[3]), "options": {"qf": 20}}))
    assert msg.options == p.Options(qf=20)
    assert p.parse_options(None) == p.Options()
    assert p.parse_options({"mask": "agt"}).mask is p.MaskMethod.AGT
    with pytest.raises(p.ProtocolError):
        p.parse_options({"nope": 1})
    with pytest.raises(TypeError):
        p.parse_options(["mask"])


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda d: d.pop("type"), "bad_message"),
        (lambda d: d.update(type="explode"), "bad_message"),
        (lambda d: d.update(type=7), "bad_message"),
        (lambda d: d.pop("v"), "unsupported_version"),
        (lambda d: d.update(v=2), "unsupported_version"),
        (lambda d: d.pop("width"), "bad_message"),
        (lambda d: d.update(width="3"), "bad_message"),
        (lambda d: d.update(width=3.0), "bad_message"),
        (lambda d: d.update(width=True), "bad_message"),
        (lambda d: d.update(data="text, not bytes"), "bad_message"),
        (lambda d: d.update(format="cmyk8"), "bad_message"),
        (lambda d: d.update(id=""), "bad_message"),
        (lambda d: d.update(id="x" * 65), "bad_message"),
        (lambda d: d.update(id=5), "bad_message"),
        (lambda d: d.update(options=[1, 2]), "bad_message"),
        (lambda d: d.update(extra=1), "bad_message"),
    ],
)
def test_malformed_restore_messages(mutate, code):
    d = _raw(EXAMPLES[3])
    mutate(d)
    assert _decode_error(d).code == code


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x93\x01\x02\x03",
        _pack("a string"),
        _pack([1, 2]),
        _pack(None),
        p.encode(EXAMPLES[6])[:-1],
        p.encode(EXAMPLES[6]) + b"\x00",
        msgpack.packb({1: 2}),
        msgpack.packb(msgpack.ExtType(5, b"x")),
        msgpack.packb({"type": "cancel", "v": 1, "id": msgpack.ExtType(1, b"ab")}),
    ],
)
def test_garbage_is_bad_message(data):
    assert _decode_error(data).code == "bad_message"


def test_text_frames_are_refused():
    with pytest.raises(p.ProtocolError) as info:
        p.decode("{'type': 'hello'}")  # type: ignore[arg-type]
    assert info.value.code == "bad_message"


def test_deep_nesting_is_refused_without_recursion_errors():
    nested: object = 1
    for _ in range(50):
        nested = [nested]
    raw = _raw(EXAMPLES[2])
    raw["info"] = {"x": nested}
    assert _decode_error(raw).code == "bad_message"
    assert _decode_error(b"\x91" * 100_000 + b"\x01").code == "bad_message"


def test_server_messages_are_checked_too():
    queued, progress, result = (next(m for m in EXAMPLES if m.TYPE == t) for t in ("queued", "progress", "result"))
    assert _decode_error({**_raw(queued), "position": 5}).message.startswith("queued: need 0 <= position")
    assert _decode_error({**_raw(progress), "fraction": 1.5}).code == "bad_message"
    err = _decode_error({**_raw(progress), "fraction": float("nan")})
    assert err.code == "bad_message" and "fraction" in err.message
    err = _decode_error({**_raw(result), "mask": b"\x00"})
    assert err.code == "bad_message" and "mask" in err.message
    assert _decode_error({**_raw(EXAMPLES[2]), "limits": {"max_pixels": 0}}).code == "bad_message"
    # an error code unknown to this version is still readable
    assert p.decode(_pack({**_raw(EXAMPLES[12]), "code": "brand_new_code"})).code == "brand_new_code"


def test_encode_refuses_invalid_messages():
    with pytest.raises(p.ProtocolError):
        p.encode(p.Restore(id="x", width=2, height=2, format="gray8", data=b"abc"))
    with pytest.raises(p.ProtocolError):
        p.encode(p.Progress(id="x", fraction=2.0))
    with pytest.raises(p.ProtocolError):
        p.encode(p.Cancel(id=7))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.encode("hello")  # type: ignore[arg-type]


def test_error_codes_mirror_the_engine_codes():
    engine = {
        "restore_error",
        "invalid_image",
        "invalid_option",
        "bad_weights",
        "unsupported_model",
        "out_of_memory",
        "cancelled",
    }
    assert engine <= {c.value for c in p.ErrorCode}
    err = p.ProtocolError(p.ErrorCode.TOO_LARGE, "big", "r")
    assert err.code == "too_large" and isinstance(err.code, str) and "big" in str(err)


def test_options_schema_lists_every_option_with_its_default():
    schema = p.options_schema()
    assert set(schema) == {f.name for f in dataclasses.fields(p.Options)}
    for f in dataclasses.fields(p.Options):
        default = f.default.value if hasattr(f.default, "value") else f.default
        assert schema[f.name]["default"] == default
    assert schema["mask"]["choices"] == [m.value for m in p.MaskMethod]
    assert p.options_schema(models=["a"])["model"]["choices"] == ["a"]


def test_protocol_imports_without_torch_numpy_or_websockets():
    code = textwrap.dedent(
        """
        import sys
        for name in ("torch", "numpy", "websockets", "PIL", "cv2"):
            sys.modules[name] = None  # any import of these now fails
        from server import protocol
        m = protocol.Restore(id="a", width=1, height=1, format="gray8", data=b"\\xff")
        assert protocol.decode(protocol.encode(m)) == m
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_protocol_works_with_msgpack_pure_python_fallback():
    code = textwrap.dedent(
        """
        import msgpack
        assert msgpack.Unpacker.__module__ == "msgpack.fallback", msgpack.Unpacker.__module__
        from server import protocol
        m = protocol.Result(id="a", width=1, height=1, format="graya8", data=b"\\x00\\xff", mask=b"\\xff",
                            timings={"t": 1.0})
        assert protocol.decode(protocol.encode(m)) == m
        for bad in (b"", b"\\xc1", b"\\x91" * 5000):
            try:
                protocol.decode(bad)
            except protocol.ProtocolError as e:
                assert e.code == "bad_message"
            else:
                raise AssertionError(bad)
        print("ok")
        """
    )
    env = {**__import__("os").environ, "MSGPACK_PUREPYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---- property tests ------------------------------------------------------------------------------

ids = st.text(min_size=1, max_size=p.MAX_ID_LENGTH)
raw_formats = st.sampled_from(sorted(p.RAW_FORMATS))
options = st.builds(
    p.Options,
    mask=st.sampled_from(list(p.MaskMethod)),
    threshold=st.booleans(),
    theta=st.integers(0, 255),
    qf=st.none() | st.integers(1, 100),
    background=st.sampled_from(list(p.Background)),
    return_mask=st.booleans(),
    model=st.none() | st.text(min_size=1, max_size=20),
    jpeg_consistency=st.booleans(),
    normalize_ink=st.booleans(),
    jpeg_table=st.none() | st.lists(st.integers(1, 65535), min_size=64, max_size=64),
)


@st.composite
def restores(draw):
    fmt = draw(raw_formats)
    w, h = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    data = draw(st.binary(min_size=p.expected_size(fmt, w, h), max_size=p.expected_size(fmt, w, h)))
    return p.Restore(id=draw(ids), width=w, height=h, format=fmt, data=data, options=draw(options))


@st.composite
def results(draw):
    fmt = draw(raw_formats)
    w, h = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    n = p.expected_size(fmt, w, h)
    return p.Result(
        id=draw(ids),
        width=w,
        height=h,
        format=fmt,
        data=draw(st.binary(min_size=n, max_size=n)),
        mask=draw(st.none() | st.binary(min_size=w * h, max_size=w * h)),
        qf_estimate=draw(st.none() | st.floats(0, 100)),
        timings=draw(st.dictionaries(st.text(max_size=10), st.floats(0, 1e6), max_size=4)),
        notes=draw(st.lists(st.text(max_size=50), max_size=3)),
    )


messages = st.one_of(
    st.builds(p.Hello, client=st.text(max_size=50)),
    restores(),
    results(),
    st.builds(p.Cancel, id=ids),
    st.integers(1, 1000).flatmap(
        lambda depth: st.builds(p.Queued, id=ids, position=st.integers(0, depth - 1), depth=st.just(depth))
    ),
    st.builds(p.Progress, id=ids, fraction=st.floats(0, 1)),
    st.builds(p.Error, code=st.text(min_size=1, max_size=20), message=st.text(max_size=100), id=st.none() | ids),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_random_valid_messages_round_trip(message):
    assert p.decode(p.encode(message)) == message


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data):
    try:
        p.decode(data)
    except p.ProtocolError as e:
        assert e.code in {c.value for c in p.ErrorCode}
