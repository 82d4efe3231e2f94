"""The attachment resolver against the fake Slack file host: a reply prepares only what it can
send (the newest images up to the per-request cap, documents that fit), each file once, and
reads documents' text."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image
from slack_sdk import WebClient

from bot.conversation.budget import fit_to_budget
from bot.conversation.window import load_window, newest_rows
from bot.documents.extract import Limits
from bot.documents.reader import DocumentReader
from bot.history import store as history
from bot.history.attachments import AttachmentResolver
from bot.history.messages import thread_to_messages
from bot.sandbox import Sandbox
from tests.fakes.slack import FakeSlack


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), (seed % 256, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def resolver(sessions, slack):
    with httpx.Client() as http:
        yield AttachmentResolver(
            sessions,
            api_url=slack.api_url,
            max_file_bytes=1_000_000,
            http=http,
            document_max_bytes=200_000,
            document_limits=Limits(max_pages=5, max_chars=5_000),
            documents=DocumentReader(Sandbox(slots=1), limits=Limits(max_pages=5, max_chars=5_000)),
        )


def post(sessions, slack, ts, text, files):
    with sessions.begin() as session:
        history.engage_thread(session, "T1", "C1", "1.0", mid_thread=False)
        history.upsert_message(
            session, team_id="T1", channel_id="C1", thread_ts="1.0", ts=ts, user_id="U1", text=text, files=files
        )


def window(sessions, budget=100_000):
    with sessions() as session:
        return newest_rows(session, "T1", "C1", "1.0", budget_tokens=budget)


def test_only_the_newest_images_within_the_cap_are_downloaded_and_loaded(sessions, slack, resolver):
    for n in range(40):
        file = slack.add_file(f"F{n}", png(n), name=f"shot{n}.png", mimetype="image/png")
        post(sessions, slack, f"{100 + n}.0", f"screenshot {n}", [file])
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    resolver(client, "T1", window(sessions).rows, max_images=10, budget_tokens=100_000)
    assert sorted(d.file_id for d in slack.downloads) == sorted(f"F{n}" for n in range(30, 40))
    resolver(client, "T1", window(sessions).rows, max_images=10, budget_tokens=100_000)
    assert len(slack.downloads) == 10  # prepared once
    with sessions() as session:
        entries, _ = load_window(session, "T1", "C1", "1.0", budget_tokens=100_000, max_images=10)
    assert [e.images[0].number for e in entries if e.images] == list(range(31, 41))  # of all images posted
    messages = thread_to_messages(
        fit_to_budget(entries, budget_tokens=100_000, fixed_tokens=0).entries, system_prompt=""
    )
    assert (
        sum(1 for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url")
        == 10
    )
    # The older files are not lost: each is named to the model.
    assert all("shot" in str(m["content"]) for m in messages[1:])


def test_a_text_file_is_read_once_and_counted(sessions, slack, resolver):
    source = b"def greet(name):\n    return f'hello {name}'\n" * 20
    file = slack.add_file("FPY", source, name="greet.py", mimetype="text/plain", filetype="python")
    post(sessions, slack, "100.0", "review this", [file])
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    before = window(sessions).rows[0].tokens
    assert resolver(client, "T1", window(sessions).rows, max_images=10, budget_tokens=100_000) == []
    after = window(sessions).rows[0].tokens
    assert after > before + len(source) // 4  # the text now counts in the stored estimate
    with sessions() as session:
        [entry], _ = load_window(session, "T1", "C1", "1.0", budget_tokens=100_000, max_images=10)
    assert entry.documents[0].name == "greet.py" and "def greet(name):" in entry.documents[0].text
    resolver(client, "T1", window(sessions).rows, max_images=10, budget_tokens=100_000)
    assert len(slack.downloads) == 1


def test_documents_beyond_the_budget_are_not_downloaded(sessions, slack, resolver):
    for n in range(5):
        file = slack.add_file(f"FT{n}", b"x = 1\n" * 3000, name=f"f{n}.py", mimetype="text/x-python")
        post(sessions, slack, f"{100 + n}.0", f"file {n}", [file])
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    resolver(client, "T1", window(sessions).rows, max_images=10, budget_tokens=4_000)
    assert [d.file_id for d in slack.downloads] == ["FT4", "FT3"]  # newest first, while they fit


def test_unreadable_documents_are_told_and_named(sessions, slack, resolver):
    broken = slack.add_file("FBAD", b"%PDF-1.7\nnot really a pdf", name="broken.pdf", mimetype="application/pdf")
    archive = slack.add_file("FZIP", b"PK\x03\x04" + b"\0" * 100, name="a.zip", mimetype="application/zip")
    post(sessions, slack, "100.0", "files", [broken, archive])
    client = WebClient(token="xoxb-test-token", base_url=slack.api_url)
    told = resolver(client, "T1", window(sessions).rows, max_images=10, budget_tokens=100_000)
    assert told == ["broken.pdf could not be read: it is damaged or not really a PDF"]
    assert [d.file_id for d in slack.downloads] == ["FBAD"]
    with sessions() as session:
        [entry], _ = load_window(session, "T1", "C1", "1.0", budget_tokens=100_000, max_images=10)
    text = thread_to_messages([entry], system_prompt="")[1]["content"]
    assert "broken.pdf could not be read" in text and '"a.zip", application/zip, 104 B; not readable' in text
