"""Images end to end: files attached in Slack reach the model as image_url data URLs, once."""

from __future__ import annotations

import base64
import io
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

MAX_FILE_BYTES = 8_000_000


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    return build_stack(request, tmp_path_factory, request.param, BOT_MAX_FILE_BYTES=str(MAX_FILE_BYTES))


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def photo(width: int, height: int) -> bytes:
    """A photo-like JPEG: smooth noise, so it compresses like a real picture."""
    small = Image.merge("RGB", [Image.effect_noise((width // 10, height // 10), 60) for _ in range(3)])
    return encode(small.resize((width, height), Image.BICUBIC), "JPEG", quality=90)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims ten gigapixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def mention_with(stack, file_objects: list[dict], text: str) -> tuple[str, dict]:
    channel = new_channel()
    event = sr.app_mention(f"<@UBOT> {text}", channel=channel, files=file_objects)
    assert stack.post_event(event).status_code == 200
    assert wait_for(lambda: stack.slack.bot_messages(channel), timeout=20), stack.logs()[-2000:]
    wait_idle(stack)
    [body] = [b for _, _, b in list(stack.inference.requests) if text in json.dumps(b)]
    return channel, body


def image_parts(body: dict) -> list[dict]:
    return [
        part
        for message in body["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def decoded(part: dict) -> tuple[str, Image.Image, int]:
    url = part["image_url"]["url"]
    header, data = url.split(",", 1)
    raw = base64.b64decode(data)
    return header.removeprefix("data:").removesuffix(";base64"), Image.open(io.BytesIO(raw)), len(data)


def test_png_gif_and_webp_reach_the_model_as_data_urls(stack):
    files = [
        stack.slack.add_file(
            "FPNG", encode(Image.new("RGB", (64, 48), "red"), "PNG"), name="a.png", mimetype="image/png"
        ),
        stack.slack.add_file("FGIF", encode(Image.new("P", (32, 32)), "GIF"), name="b.gif", mimetype="image/gif"),
        stack.slack.add_file(
            "FWEBP", encode(Image.new("RGB", (40, 40), "blue"), "WEBP"), name="c.webp", mimetype="image/webp"
        ),
    ]
    _, body = mention_with(stack, files, "what colours are these?")
    parts = image_parts(body)
    assert [decoded(p)[0] for p in parts] == ["image/png", "image/gif", "image/webp"]
    assert decoded(parts[0])[1].size == (64, 48)
    # The text of the same message comes first, then its images.
    user = next(m for m in body["messages"] if isinstance(m.get("content"), list))
    assert user["content"][0]["type"] == "text" and "what colours" in user["content"][0]["text"]


def test_a_large_photo_is_scaled_and_a_follow_up_reuses_it_without_downloading(stack):
    big = photo(6000, 4000)
    assert len(big) < MAX_FILE_BYTES
    file_object = stack.slack.add_file("FBIG", big, name="photo.jpg", mimetype="image/jpeg")
    channel, body = mention_with(stack, [file_object], "describe this photo")
    [part] = image_parts(body)
    media_type, image, b64_length = decoded(part)
    assert media_type == "image/jpeg" and max(image.size) <= 1568 and b64_length <= 5 * 1024 * 1024
    downloads = len(stack.slack.downloads)
    parent_ts = stack.slack.bot_messages(channel)[0]["thread_ts"]
    stack.post_event(sr.message("and the colours?", user="U1", channel=channel, thread_ts=parent_ts))
    assert wait_for(lambda: len(stack.slack.bot_messages(channel)) == 2, timeout=20)
    wait_idle(stack)
    [follow_up] = [b for _, _, b in list(stack.inference.requests) if "and the colours?" in json.dumps(b)]
    assert len(image_parts(follow_up)) == 1
    assert len(stack.slack.downloads) == downloads


def test_the_login_page_means_the_image_could_not_be_read(stack):
    file_object = stack.slack.add_file(
        "FHTML", encode(Image.new("RGB", (8, 8)), "PNG"), name="x.png", mimetype="image/png", mode="html"
    )
    _, body = mention_with(stack, [file_object], "can you see it?")
    assert image_parts(body) == []
    assert "could not be read" in json.dumps(body) and "files:read" in json.dumps(body)


def test_a_redirect_to_a_foreign_host_never_carries_the_token(stack):
    seen: list[str | None] = []

    class Foreign(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>sign in</html>")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Foreign)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        file_object = stack.slack.add_file(
            "FFOREIGN",
            b"irrelevant",
            name="y.png",
            mimetype="image/png",
            mode="redirect_foreign",
            redirect_to=f"http://127.0.0.1:{server.server_port}/elsewhere.png",
        )
        _, body = mention_with(stack, [file_object], "is this safe?")
    finally:
        server.shutdown()
    assert seen == [None]
    assert "could not be read" in json.dumps(body)


@pytest.mark.parametrize(
    ("content", "name", "mimetype", "expected"),
    [
        (b"\x89PNG\r\n\x1a\nnot really", "broken.png", "image/png", "could not be read"),
        (bomb_png(), "bomb.png", "image/png", "could not be read"),
        (b"\xff" * (MAX_FILE_BYTES + 10), "huge.png", "image/png", "larger than"),
    ],
)
def test_hostile_or_oversized_files_are_refused_with_a_reason(stack, content, name, mimetype, expected):
    file_object = stack.slack.add_file("F" + name.split(".")[0].upper(), content, name=name, mimetype=mimetype)
    _, body = mention_with(stack, [file_object], f"look at {name}")
    assert image_parts(body) == []
    assert expected in json.dumps(body).lower()


def test_other_files_become_a_short_note(stack):
    file_object = stack.slack.add_file(
        "FZIP", b"PK\x03\x04" + b"x" * 2048, name="archive.zip", mimetype="application/zip", filetype="zip"
    )
    downloads = len(stack.slack.downloads)
    _, body = mention_with(stack, [file_object], "what is in the archive")
    text = json.dumps(body)
    assert "archive.zip" in text and "application/zip" in text and "2.0 KB" in text and "not readable" in text
    assert len(stack.slack.downloads) == downloads  # nothing to download for a note


def test_a_slack_connect_stub_is_resolved_with_files_info(stack):
    file_object = stack.slack.add_file(
        "FSTUB", encode(Image.new("RGB", (20, 10)), "PNG"), name="s.png", mimetype="image/png", mode="stub"
    )
    before = len(stack.slack.calls_to("files.info"))
    _, body = mention_with(stack, [file_object], "what is in the shared file?")
    assert len(stack.slack.calls_to("files.info")) == before + 1
    [part] = image_parts(body)
    assert decoded(part)[1].size == (20, 10)
