"""How long `prepare_image` takes on a typical phone photo: 12 megapixels (4000x3000) of JPEG.

The photo is generated: smooth gradients (sky, shading) plus per-channel noise (grain and
texture), so it compresses about like a real photograph (a few MB at quality 90). Timings
include decoding, orientation, scaling to 1568 px and re-encoding.

    python -m bench.bench_image_processing [--runs 9]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from PIL import Image

from bot.images.processing import base64_length, prepare_image

WIDTH, HEIGHT = 4000, 3000


def photo_like_jpeg(width: int = WIDTH, height: int = HEIGHT, quality: int = 90) -> bytes:
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    base = Image.merge("RGB", [horizontal, vertical, radial])
    grain = Image.merge("RGB", [Image.effect_noise((width, height), sigma) for sigma in (48, 56, 64)])
    photo = Image.blend(base, grain, 0.3)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = fraction * (len(ordered) - 1)
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs (at least 7)")
    args = parser.parse_args(argv)
    runs = max(7, args.runs)

    data = photo_like_jpeg()
    prepare_image(data)  # warm-up: plugin registration, first allocations
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        part = prepare_image(data)
        timings.append(time.perf_counter() - started)

    print(f"input   {WIDTH}x{HEIGHT} JPEG, {len(data) / 1e6:.2f} MB")
    print(
        f"output  {part.width}x{part.height} {part.media_type}, {len(part.data) / 1e6:.2f} MB "
        f"({base64_length(len(part.data)) / 1e6:.2f} MB as base64)"
    )
    print(
        f"prepare_image over {runs} runs: median {statistics.median(timings) * 1000:.0f} ms, "
        f"p90 {percentile(timings, 0.9) * 1000:.0f} ms, min {min(timings) * 1000:.0f} ms, "
        f"max {max(timings) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
