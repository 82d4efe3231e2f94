"""Documents and earlier images end to end (the web app and a worker in one process, fake Slack and
fake model over HTTP): a PDF's and a .py file's text reach the model, unreadable files are
named, hostile PDFs get a clear note (to the model and in the answer) and crash nothing, and an
image from the thread's first message is still sent, labelled, in a later turn."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.pdfs import make_pdf
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

DOCUMENT_MAX_BYTES = 300_000


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    return build_stack(
        request,
        tmp_path_factory,
        request.param,
        BOT_DOCUMENT_MAX_BYTES=str(DOCUMENT_MAX_BYTES),
        BOT_PDF_MAX_PAGES="5",
    )


def requests_with(stack, needle: str) -> list[dict]:
    return [body for _, _, body in list(stack.inference.requests) if needle in json.dumps(body)]


def ask(stack, files: list[dict], text: str, *, channel: str | None = None, thread_ts: str | None = None):
    channel = channel or new_channel()
    before = len(stack.slack.bot_messages(channel))
    event = sr.app_mention(f"<@UBOT> {text}", channel=channel, files=files, thread_ts=thread_ts)
    assert stack.post_event(event).status_code == 200
    assert wait_for(lambda: len(stack.slack.bot_messages(channel)) > before, timeout=30), stack.logs()[-3000:]
    wait_idle(stack)
    [body] = requests_with(stack, text)[-1:]
    return channel, event, body


def test_the_text_of_a_pdf_and_of_a_python_file_reach_the_model(stack):
    pdf = stack.slack.add_file(
        "FPDFOK",
        make_pdf(["Revenue grew 12 percent in Q3", "Churn fell to 2 percent"]),
        name="q3-report.pdf",
        mimetype="application/pdf",
    )
    source = b"def total(items):\n    return sum(item.price for item in items)\n"
    code = stack.slack.add_file("FPY", source, name="billing.py", mimetype="text/plain", filetype="python")
    archive = stack.slack.add_file(
        "FZIP2", b"PK\x03\x04" + b"\0" * 2_000_000, name="archive.zip", mimetype="application/zip", filetype="zip"
    )
    channel, _, body = ask(stack, [pdf, code, archive], "compare the report and the code")
    text = json.dumps(body)
    assert "[page 1]\\nRevenue grew 12 percent in Q3" in text and "[page 2]\\nChurn fell to 2 percent" in text
    assert "def total(items):" in text and 'file \\"billing.py\\", shared by <@U1>' in text
    assert '\\"archive.zip\\", application/zip, 1.9 MB; not readable' in text
    # A later turn still has them, without downloading again.
    downloads = len(stack.slack.downloads)
    parent = stack.slack.bot_messages(channel)[0]["thread_ts"]
    _, _, follow_up = ask(stack, [], "and what about churn?", channel=channel, thread_ts=parent)
    assert "Churn fell to 2 percent" in json.dumps(follow_up) and "def total(items):" in json.dumps(follow_up)
    assert len(stack.slack.downloads) == downloads


@pytest.mark.parametrize(
    ("name", "content", "note"),
    [
        ("scan.pdf", make_pdf([None, None]), "scan.pdf has no text layer (scanned?)"),
        ("locked.pdf", make_pdf(["secret"], user_password="pw"), "locked.pdf is encrypted"),
        (
            "broken.pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ntrailer\n%%EOF",
            "broken.pdf could not be read",
        ),
        (
            "huge.pdf",
            b"%PDF-1.7\n" + b"0" * (DOCUMENT_MAX_BYTES + 10),
            "huge.pdf could not be read: the file is larger than",
        ),
    ],
)
def test_unreadable_pdfs_get_a_note_for_the_model_and_the_person(stack, name, content, note):
    file = stack.slack.add_file("F" + name.split(".")[0].upper(), content, name=name, mimetype="application/pdf")
    channel, _, body = ask(stack, [file], f"please read {name}")
    assert note in json.dumps(body)
    [answer] = stack.slack.bot_messages(channel)
    assert note in stack.slack.text_of(channel, answer["ts"])  # told in the one answer message
    assert "job dead" not in stack.logs() and "Traceback" not in stack.logs()


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_image_from_the_first_message_is_sent_labelled_in_a_later_turn(stack):
    first = stack.slack.add_file("FFIRST", png("red"), name="first-screenshot.png", mimetype="image/png")
    channel, event, _ = ask(stack, [first], "here is the first screenshot")
    parent = event["ts"]
    second = stack.slack.add_file("FSECOND", png("blue"), name="second-screenshot.png", mimetype="image/png")
    sr_event = sr.message("and a second one", user="U2", channel=channel, thread_ts=parent, files=[second])
    assert stack.post_event(sr_event).status_code == 200
    assert wait_for(lambda: len(stack.slack.bot_messages(channel)) == 2, timeout=30)
    wait_idle(stack)
    _, _, body = ask(stack, [], "what colour was the first screenshot?", channel=channel, thread_ts=parent)
    parts = [
        p for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list) for p in m["content"]
    ]
    labels = [p["text"] for p in parts if p["type"] == "text" and p["text"].startswith("(image ")]
    assert labels == [
        '(image 1 of this thread, "first-screenshot.png", posted by <@U1>)',
        '(image 2 of this thread, "second-screenshot.png", posted by <@U2>)',
    ], labels
    assert sum(1 for p in parts if p["type"] == "image_url") == 2
    assert all(m["role"] == "user" for m in body["messages"] if isinstance(m["content"], list))
