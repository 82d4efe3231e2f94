"""Turn the bytes of an uploaded file into an image Claude accepts, or say why not (pure, Pillow).

Claude (through Heroku Managed Inference) takes base64 data URLs of JPEG, PNG, GIF or WebP,
at most 5 MB each, and scales anything beyond 1568 px on the long edge or about 1.15 megapixels
itself. `prepare_image`:

1. refuses what is not an image: empty input, HTML (Slack's login page), unknown or unsupported
   formats, corrupt or truncated files (``Image.verify()``, then a fresh open and a full decode);
2. refuses decompression bombs *before* decoding: the declared size is checked against the
   per-call ``max_pixels``. Pillow's own global check (``Image.MAX_IMAGE_PIXELS``) is never
   changed, so this is safe with many threads; it still raises for anything over twice its
   limit, which we also report as too large. Pillow may emit a ``DecompressionBombWarning``
   for sizes between its limit and twice that; we reject those anyway (with the default
   ``max_pixels``), and leave the process's warning filters alone (they are not thread-safe);
3. decodes the first frame only (animated GIF, WebP or PNG become a still image), applies the
   EXIF orientation, converts colours to plain sRGB (an embedded ICC profile is applied with
   ImageCms when it can be, then dropped; CMYK, 16-bit, float and palette modes are converted),
   and scales down with LANCZOS to at most ``max_edge`` on the long edge and about 1.15 megapixels
   (never up);
4. re-encodes, which strips every piece of metadata (EXIF with its GPS position, XMP, ICC,
   comments, text chunks): JPEG, PNG, GIF and WebP keep their format; anything else (BMP,
   TIFF, ICO, …) becomes PNG. When the result is too big, PNG falls back to JPEG (no
   transparency) or WebP (transparency), and JPEG/WebP step their quality down; when nothing
   fits, the image is rejected. A GIF that had to be scaled becomes PNG (its palette is gone).
   JPEG and WebP are re-encoded lossy (quality 85 first), even a lossless WebP.

``max_bytes`` caps the **base64 text** (what the API counts against its 5 MB), not the binary
file: with the default 5 MiB, the encoded image is at most 3,932,160 bytes. `base64_length`
gives the arithmetic.

Only these source formats are opened (Pillow has many more plugins; some, like EPS, run
external programs): see ``READABLE_FORMATS``.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Callable, Iterator

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from bot.images.part import ImagePart

DEFAULT_MAX_EDGE = 1568
TARGET_MAX_AREA = 1_150_000  # pixels: "no more than 1.15 megapixels" (Claude's vision guide)
DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # of base64 text
# The pixel cap, read from the header before anything is decoded. 25 megapixels holds every
# camera photo up to 24 MP (6000x4000) and phone photos (12 MP; 48 and 200 MP sensors save
# 12 MP by default). Pillow's own limit (89 MP, an error only at twice that) lets a 200 KB PNG
# decode to hundreds of megabytes.
DEFAULT_MAX_PIXELS = 25_000_000
# And what a decode may cost in memory: a header whose pixels would take more is refused too.
# Pillow holds RGB as 4 bytes a pixel; JPEG decodes reduced (`draft`, 1/2 to 1/8 of each edge),
# the others at full size, plus working copies. Measured peaks (tests/integration/
# test_image_memory.py) are about 5 bytes a source pixel for PNG, GIF, BMP or TIFF (counted as
# 6: up to 17 MP, a 5K screenshot is 14.7 MP) and 16 for WebP, whose decoder keeps copies
# (counted as 18: up to 5.8 MP). Pixel bombs are refused from the header, before any decode.
DECODE_BUDGET_BYTES = 100 * 1024 * 1024
DECODE_BYTES_PER_PIXEL = {"JPEG": 4.5, "MPO": 4.5, "WEBP": 18.0}
DEFAULT_DECODE_BYTES_PER_PIXEL = 6.0
# Decodes at once per process, whatever the worker's concurrency: at most 2 x 100 MB.
DEFAULT_DECODE_CONCURRENCY = 2

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
ACCEPTED_MEDIA_TYPES = frozenset(MEDIA_TYPES.values())

# Formats we decode. MPO is what Pillow calls many phone-camera JPEGs.
READABLE_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF", "ICO", "TGA", "PPM", "AVIF")
KEPT_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WEBP"}

ORIENTATION_TAG = 0x0112
LOSSY_QUALITIES = (85, 75, 65, 55, 45, 35)
PNG_COMPRESS_LEVEL = 6
WEBP_METHOD = 4

HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta", b"<script")

# Pillow raises these (and subclasses: UnidentifiedImageError is an OSError) for files it cannot
# read; struct.error, IndexError and zlib.error come out of some plugins on malformed input.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error, zlib.error)


_decode_slots = threading.BoundedSemaphore(DEFAULT_DECODE_CONCURRENCY)


def set_decode_concurrency(slots: int) -> None:
    """How many images this process decodes at once (the worker sets it from its settings
    at start, before any job runs); the others wait their turn."""
    global _decode_slots
    _decode_slots = threading.BoundedSemaphore(max(1, slots))


class ImageRejected(Exception):
    """The file cannot be shown to the model; `reason` is short and safe to show a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def base64_length(size: int) -> int:
    """Length of the base64 text for `size` bytes (padding included)."""
    return 4 * ((size + 2) // 3)


def is_probably_html(head: bytes) -> bool:
    """True when the first bytes of a body look like an HTML page (Slack's login page, say)."""
    start = head[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    if not start.startswith(b"<"):
        return False
    return any(marker in start for marker in HTML_MARKERS)


# (offset, magic, media type); checked in order.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
)
_FTYP_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic", b"heix": "image/heic"}


def sniff_media_type(head: bytes) -> str | None:
    """The media type the first bytes announce, or None when they match no image format we know.

    Only jpeg, png, gif and webp are in ``ACCEPTED_MEDIA_TYPES``; the others (bmp, tiff, ico,
    avif, heic) are recognised so a caller can say what a file is, not that it can be sent as is.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12])
    for offset, magic, media_type in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    return None


def prepare_image(
    data: bytes,
    *,
    max_edge: int = DEFAULT_MAX_EDGE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImagePart:
    """Validate, orient, clean and scale `data`; encode it so its base64 form fits `max_bytes`.

    Raises ImageRejected with a short reason when the file cannot be used.
    """
    if not data:
        raise ImageRejected("the file is empty")
    if is_probably_html(data[:1024]):
        raise ImageRejected("the file is a web page, not an image")
    with _decode_slots:
        return _prepare(data, max_edge=max_edge, max_bytes=max_bytes, max_pixels=max_pixels)


def _prepare(data: bytes, *, max_edge: int, max_bytes: int, max_pixels: int) -> ImagePart:
    image, source_format = _decode_first_frame(data, max_edge=max_edge, max_pixels=max_pixels)
    try:
        image = _orient(image)
        size = _target_size(image, max_edge)
        needs_scaling = size != image.size
        target = KEPT_FORMATS.get(source_format, "PNG")
        if target == "GIF" and (needs_scaling or image.mode not in ("P", "L")):
            target = "PNG"
        if target != "GIF":
            image = _to_plain_mode(image)
        if needs_scaling:
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        data_out, media_type = _encode_within(image, target, max_bytes)
    except _DECODE_ERRORS as exc:
        raise ImageRejected("the image could not be converted") from exc
    return ImagePart(media_type=media_type, data=data_out, width=image.width, height=image.height)


def _decode_first_frame(data: bytes, *, max_edge: int, max_pixels: int) -> tuple[Image.Image, str]:
    formats = _readable_formats()
    try:
        with Image.open(io.BytesIO(data), formats=formats) as probe:
            source_format = probe.format or ""
            _check_pixels(probe.size, max_pixels)
            _check_decode_cost(source_format, probe.size, max_edge)
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=formats)
        source_size = image.size
        if source_format in ("JPEG", "MPO"):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers max_edge:
            # much faster and smaller than decoding twelve megapixels to throw most away.
            image.draft(None, _scaled_size(image.size, max_edge))
        image.load()
        if image.size != source_size:
            image.info[SOURCE_SIZE_KEY] = source_size
        image = _reduce_early(image, max_edge)
    except UnidentifiedImageError as exc:
        raise ImageRejected(_unidentified_reason(data)) from exc
    except Image.DecompressionBombError as exc:
        raise ImageRejected("the image is too large (too many pixels)") from exc
    except _DECODE_ERRORS as exc:
        raise ImageRejected("the image is corrupt or truncated") from exc
    return image, source_format


def _readable_formats() -> tuple[str, ...]:
    Image.init()  # registers every plugin once; a no-op afterwards
    return tuple(name for name in READABLE_FORMATS if name in Image.OPEN)


def _unidentified_reason(data: bytes) -> str:
    media_type = sniff_media_type(data[:32])
    if media_type is not None or data.lstrip()[:5].lower() in (b"<?xml", b"<svg ", b"<svg>"):
        return "this image format is not supported (use JPEG, PNG, GIF or WebP)"
    return "the file is not an image"


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageRejected("the image is empty")
    if width * height > max_pixels:
        raise ImageRejected(
            f"the image is too large (too many pixels: {width}x{height}, more than {max_pixels / 1e6:g} megapixels)"
        )


def draft_scale(size: tuple[int, int], max_edge: int) -> int:
    """The 1/n scale libjpeg decodes at for `max_edge` (the largest of 8, 4, 2 that still covers it)."""
    target_width, target_height = _scaled_size(size, max_edge)
    for scale in (8, 4, 2):
        if size[0] // scale >= target_width and size[1] // scale >= target_height:
            return scale
    return 1


def decode_cost(source_format: str, size: tuple[int, int], max_edge: int) -> float:
    """Bytes of memory decoding and preparing an image of `size` takes, about (see the table)."""
    pixels = size[0] * size[1]
    per_pixel = DECODE_BYTES_PER_PIXEL.get(source_format, DEFAULT_DECODE_BYTES_PER_PIXEL)
    if source_format in ("JPEG", "MPO"):
        pixels /= draft_scale(size, max_edge) ** 2
    return pixels * per_pixel


def _check_decode_cost(source_format: str, size: tuple[int, int], max_edge: int) -> None:
    if decode_cost(source_format, size, max_edge) > DECODE_BUDGET_BYTES:
        width, height = size
        raise ImageRejected(
            f"the image is too large (too many pixels: {width}x{height} is more than a {source_format} "
            "image may have; please send a smaller one)"
        )


# Modes `Image.reduce` takes directly, and what the others become, band by band, on the way.
_REDUCIBLE = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "1": "L", "P": None, "PA": "RGBA"}
_BAND_ROWS = 128


SOURCE_SIZE_KEY = "bot_source_size"


def _target_size(image: Image.Image, max_edge: int) -> tuple[int, int]:
    """The size to scale `image` to, from its source's size when JPEG's `draft` or
    `_reduce_early` decoded it smaller (both round each edge, which would skew the shape a pixel)."""
    source = image.info.get(SOURCE_SIZE_KEY)
    if not source:
        return _scaled_size(image.size, max_edge)
    width, height = source
    if (image.width >= image.height) != (width >= height):  # orientation turned it
        width, height = height, width
    target = _scaled_size((width, height), max_edge)
    return min(target[0], image.width), min(target[1], image.height)


def _reduce_early(image: Image.Image, max_edge: int) -> Image.Image:
    """`image` shrunk by the largest whole factor that keeps it at least the target size,
    right after decoding and before any full-size copy (orientation, colour conversions):
    a palette image is converted band by band, so no full-size RGB(A) copy ever exists.
    JPEG needs none of this (`draft` decoded it reduced); other modes are left as they are."""
    width, height = image.size
    target_width, target_height = _scaled_size(image.size, max_edge)
    factor = min(width // target_width, height // target_height)
    if factor < 2 or image.mode not in _REDUCIBLE:
        return image
    mode = _REDUCIBLE[image.mode]
    if mode is None:  # palette: RGBA when some colour is transparent
        mode = "RGBA" if "transparency" in image.info else "RGB"
    rows = max(factor, _BAND_ROWS - _BAND_ROWS % factor)
    reduced = Image.new(mode, (-(-width // factor), -(-height // factor)))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(height, top + rows)))
        if band.mode != mode:
            band = band.convert(mode)
        reduced.paste(band.reduce(factor), (0, top // factor))
    reduced.info = {key: value for key, value in image.info.items() if key != "transparency"}
    reduced.info.setdefault(SOURCE_SIZE_KEY, (width, height))  # the final size keeps the source's shape
    return reduced


def _scaled_size(size: tuple[int, int], max_edge: int, max_area: int = TARGET_MAX_AREA) -> tuple[int, int]:
    """The size to send: at most `max_edge` on the long edge and about `max_area` pixels (never up).

    Claude's guidance: "resize images to no more than 1.15 megapixels (and within 1568 pixels in
    both dimensions)"; beyond that it scales them itself, so more pixels only cost bytes and time.
    """
    width, height = size
    longest = max(width, height)
    scale = min(
        1.0, max_edge / longest if longest else 1.0, (max_area / (width * height)) ** 0.5 if width * height else 1.0
    )
    if scale >= 1.0:
        return width, height
    # The epsilon keeps float error from truncating an exact edge (58 * (31 / 58) is 30.999…).
    return max(1, int(width * scale + 1e-9)), max(1, int(height * scale + 1e-9))


def _orient(image: Image.Image) -> Image.Image:
    try:
        if image.getexif().get(ORIENTATION_TAG, 1) == 1:
            return image  # upright: no copy
        oriented = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        return image  # unreadable EXIF: show the pixels as stored
    return oriented if oriented is not None else image


def _to_plain_mode(image: Image.Image) -> Image.Image:
    """L, LA, RGB or RGBA in sRGB, with alpha only when some pixel is not opaque."""
    image = _to_srgb(image)
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        image = _to_eight_bit(image)
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA", "L", "RGB") and ("transparency" in image.info or mode == "PA"):
        image = image.convert("RGBA")
    elif mode == "P":
        image = image.convert("RGB")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode or "a" in mode else "RGB")
    if image.mode in ("LA", "RGBA"):
        lowest_alpha, _ = image.getchannel("A").getextrema()
        if lowest_alpha == 255:
            image = image.convert(image.mode[:-1])
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile (CMYK, wide-gamut RGB) so the pixels mean sRGB; drop it."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image.convert("RGB") if image.mode == "CMYK" else image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, srgb, outputMode=output_mode)
    except (ImportError, ImageCms.PyCMSError, TypeError, *_DECODE_ERRORS):
        converted = None  # no littlecms, or a broken profile: plain conversion is good enough
    if converted is None:
        return image.convert("RGB") if image.mode == "CMYK" else image
    return converted


def _to_eight_bit(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float greyscale to L: 16-bit ranges divided by 256, others stretched."""
    if image.mode != "F":
        image = image.convert("I")
    lowest, highest = image.getextrema()
    if lowest >= 0 and highest <= 255:
        pass
    elif image.mode == "I" and lowest >= 0 and highest <= 65535:
        image = image.point(lambda value: value / 256)
    elif highest > lowest:
        span = highest - lowest
        image = image.point(lambda value: (value - lowest) * 255 / span)
    return image.convert("L")


def _encode_within(image: Image.Image, target: str, max_bytes: int) -> tuple[bytes, str]:
    for fmt, encode in _attempts(image, target):
        data = encode()
        if base64_length(len(data)) <= max_bytes:
            return data, MEDIA_TYPES[fmt]
    raise ImageRejected("the image is too detailed to fit the 5 MB limit even after compression")


def _attempts(image: Image.Image, target: str) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Encodings to try in order, best first."""
    if target == "GIF":
        yield "GIF", lambda: _save(image, "GIF", transparency=image.info.get("transparency"))
        image = _to_plain_mode(image)
        target = "PNG"
    has_alpha = image.mode in ("LA", "RGBA")
    if target == "PNG":
        yield "PNG", lambda: _save(image, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        target = "WEBP" if has_alpha else "JPEG"
    if target == "JPEG" and has_alpha:
        target = "WEBP"  # only reachable if a JPEG source somehow carried alpha
    if target == "JPEG":
        for quality in LOSSY_QUALITIES:
            yield "JPEG", lambda q=quality: _save(image, "JPEG", quality=q, optimize=True)
    else:
        colour = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if has_alpha else "RGB")
        for quality in LOSSY_QUALITIES:
            yield "WEBP", lambda q=quality: _save(colour, "WEBP", quality=q, method=WEBP_METHOD)


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    # Savers fall back on image.info for ICC, XMP, comments, loop/duration…: give them nothing.
    clean = image.copy()
    clean.info = {}
    buffer = io.BytesIO()
    clean.save(buffer, fmt, **{key: value for key, value in params.items() if value is not None})
    return buffer.getvalue()
