"""Peak memory of `prepare_image` on hostile and at-the-cap images, measured in a subprocess.

Pillow allocates pixels outside Python's allocator (tracemalloc does not see them), so each
case runs in a fresh interpreter and reports the growth of its peak RSS (`ru_maxrss`) across
one `prepare_image` call (VmHWM, reset just before it; `ru_maxrss` would carry pytest's own
peak across exec), after a warm-up on a tiny image. Goal (#15): at most +100 MB.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from bot.images.processing import DECODE_BUDGET_BYTES, DEFAULT_MAX_EDGE, DEFAULT_MAX_PIXELS, decode_cost

GOAL_MB = 100

MEASURE = r"""
import io, json, sys
from PIL import Image
from bot.images.processing import ImageRejected, prepare_image

def status_kib(field):
    return int([line.split()[1] for line in open("/proc/self/status") if line.startswith(field + ":")][0])

tiny = io.BytesIO()
Image.new("RGB", (8, 8), "red").save(tiny, "PNG")
prepare_image(tiny.getvalue())  # plugins registered, first allocations made
data = open(sys.argv[1], "rb").read()
before = status_kib("VmRSS")
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # resets VmHWM (the peak) to the current RSS
try:
    part = prepare_image(data)
    outcome = {"accepted": True, "width": part.width, "height": part.height}
except ImageRejected as exc:
    outcome = {"accepted": False, "reason": exc.reason}
print(json.dumps({**outcome, "growth_mb": (status_kib("VmHWM") - before) / 1024}))
"""


def measure(path: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def png_bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of width x height zeros, built row by row: a few KB on disk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def pattern(mode: str, size: tuple[int, int]) -> Image.Image:
    image = Image.new(mode, size, "white" if mode != "P" else 0)
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 97):
        draw.line([(x, 0), (size[0] - x, size[1])], fill="navy" if mode != "P" else 3, width=5)
    return image


def test_a_pixel_bomb_is_refused_from_its_header_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb(7000, 7000))  # 49 MP, a few hundred KB
    result = measure(path)
    assert result["accepted"] is False
    assert "too many pixels: 7000x7000" in result["reason"]
    assert result["growth_mb"] <= GOAL_MB, result


def largest_square(fmt: str) -> int:
    """The side of the largest square image of `fmt` that is accepted."""
    side = int(DEFAULT_MAX_PIXELS**0.5)
    while decode_cost(fmt, (side, side), DEFAULT_MAX_EDGE) > DECODE_BUDGET_BYTES:
        side -= 8
    return side


@pytest.mark.parametrize(
    ("name", "mode", "fmt"),
    [
        ("rgb.png", "RGB", "PNG"),
        ("rgba.png", "RGBA", "PNG"),
        ("palette.png", "P", "PNG"),
        ("photo.jpg", "RGB", "JPEG"),
        ("rgba.webp", "RGBA", "WEBP"),
        ("frame.gif", "P", "GIF"),
        ("scan.tif", "RGB", "TIFF"),
    ],
)
def test_the_largest_images_accepted_decode_within_the_goal(tmp_path, name, mode, fmt):
    side = largest_square(fmt)
    path = tmp_path / name
    pattern(mode, (side, side)).save(path, fmt)
    result = measure(path)
    assert result["accepted"] is True, result
    assert max(result["width"], result["height"]) <= DEFAULT_MAX_EDGE
    assert result["growth_mb"] <= GOAL_MB, result
    # A little more and the header is refused: the cap is where the measurement says.
    bigger = tmp_path / ("bigger-" + name)
    pattern(mode, (side + 64, side + 64)).save(bigger, fmt)
    refused = measure(bigger)
    assert refused["accepted"] is False and refused["growth_mb"] < 5, refused
