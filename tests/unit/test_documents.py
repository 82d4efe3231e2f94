"""Documents (pure): what a file is, reading its text, and which attachments a reply prepares."""

from __future__ import annotations

import os

import pytest

from bot.documents.extract import TRUNCATED_MARK, Limits, extract, extract_pdf, extract_text
from bot.documents.kinds import kind_from_content, kind_from_metadata, looks_like_text
from bot.documents.plan import Candidate, document_estimate, plan_preparation
from tests.support.pdfs import make_pdf

# --- kinds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "kind"),
    [
        ({"name": "shot.png", "mimetype": "image/png"}, "image"),
        ({"name": "report.pdf", "mimetype": "application/pdf", "filetype": "pdf"}, "pdf"),
        ({"name": "report.pdf", "mimetype": "application/octet-stream"}, "pdf"),
        ({"name": "notes.txt", "mimetype": "text/plain", "filetype": "text"}, "text"),
        ({"name": "main.py", "mimetype": "text/x-python", "filetype": "python"}, "text"),
        ({"name": "main.py", "mimetype": "application/octet-stream", "filetype": "python"}, "text"),
        ({"name": "data.json", "mimetype": "application/json", "filetype": "json"}, "text"),
        ({"name": "table.csv", "mimetype": "text/csv", "filetype": "csv"}, "text"),
        ({"name": "README.md", "mimetype": "text/markdown", "filetype": "markdown"}, "text"),
        ({"name": "ci.yaml", "mimetype": "application/x-yaml", "filetype": "yaml"}, "text"),
        ({"name": "ci.yml", "mimetype": "", "filetype": ""}, "text"),
        ({"name": "Makefile", "mimetype": "application/octet-stream", "filetype": "makefile"}, "text"),
        ({"name": "feed.atom", "mimetype": "application/atom+xml"}, "text"),
        ({"name": "blob", "mimetype": "application/octet-stream", "filetype": "binary"}, "sniff"),
        ({"name": "archive.zip", "mimetype": "application/zip", "filetype": "zip"}, "other"),
        ({"name": "deck.pptx", "mimetype": "application/vnd.ms-powerpoint", "filetype": "pptx"}, "other"),
        ({"name": "song.mp3", "mimetype": "audio/mpeg", "filetype": "mp3"}, "other"),
        # A known binary mimetype wins over a misleading extension.
        ({"name": "trick.py", "mimetype": "application/zip", "filetype": "zip"}, "other"),
    ],
)
def test_kind_from_metadata(meta, kind):
    assert kind_from_metadata(meta) == kind


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (b"\n\n%PDF-1.4", "pdf"),
        (b"plain words\nand lines\n", "text"),
        ("naïve café ✓\n".encode(), "text"),
        ("é".encode() * 5000, "text"),  # a character cut at the sample's end is forgiven
        (b"\xef\xbb\xbfwith a BOM", "text"),
        (b"", "text"),
        (b"PK\x03\x04\x14\x00\x00\x00", "other"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "other"),
        (b"\xff\xfe\x00\x00\xfe\xff", "other"),
        (bytes(range(1, 32)) * 10, "other"),  # control characters
        (b"latin-1 \xe9t\xe9 " * 10, "other"),  # not UTF-8
    ],
)
def test_kind_from_content(data, kind):
    assert kind_from_content(data) == kind


def test_random_bytes_are_not_text():
    assert not looks_like_text(os.urandom(4096))


# --- text files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "limits", "text", "note"),
    [
        (b"print('hi')\n", Limits(), "print('hi')\n", None),
        (b"\xef\xbb\xbfbom first", Limits(), "bom first", None),
        (b"nul\x00bytes", Limits(), "nulbytes", None),
        (b"bad \xff byte", Limits(), "bad \ufffd byte", None),
        (b"   \n\n", Limits(), None, "x.txt is empty"),
        (
            b"a" * 50,
            Limits(max_chars=10),
            "a" * 10 + "\n" + TRUNCATED_MARK,
            "only the beginning of x.txt was read (it is long)",
        ),
    ],
)
def test_text_files(data, limits, text, note):
    assert extract("text", data, "x.txt", limits) == extract_text(data, "x.txt", limits)
    got = extract_text(data, "x.txt", limits)
    assert (got.text, got.note) == (text, note)


# --- PDFs --------------------------------------------------------------------------------------


def pdf_case(name):
    return {
        "text": make_pdf(["Quarterly revenue grew 12%\nCosts fell", "Outlook: stable"]),
        "scanned": make_pdf([None, None, None]),
        "encrypted": make_pdf(["top secret"], user_password="hunter2"),
        "owner_only": make_pdf(["readable anyway"], owner_password="owner"),
        "many_pages": make_pdf([f"section {n}" for n in range(1, 31)]),
        "truncated": make_pdf(["will be cut"] * 3)[:400],
        "garbage": b"%PDF-1.7\n" + os.urandom(3000),
        "not_pdf": b"<html>hello</html>",
        "empty": b"",
        "mixed": make_pdf([None, "only page two has text", None]),
    }[name]


@pytest.mark.parametrize(
    ("case", "limits", "contains", "note"),
    [
        ("text", Limits(), ["[page 1]\nQuarterly revenue grew 12%\nCosts fell", "[page 2]\nOutlook: stable"], None),
        ("scanned", Limits(), None, "report.pdf has no text layer (scanned?)"),
        ("encrypted", Limits(), None, "report.pdf is encrypted (password-protected), so its text cannot be read"),
        ("owner_only", Limits(), ["readable anyway"], None),
        (
            "many_pages",
            Limits(max_pages=5),
            ["[page 5]\nsection 5"],
            "only pages 1-5 of the 30 pages of report.pdf were read",
        ),
        ("many_pages", Limits(max_chars=60), ["[page 1]", TRUNCATED_MARK], "only pages 1-"),
        ("truncated", Limits(), None, "report.pdf could not be read: it is damaged or not really a PDF"),
        ("garbage", Limits(), None, "report.pdf could not be read: it is damaged or not really a PDF"),
        ("not_pdf", Limits(), None, "report.pdf could not be read: it is damaged or not really a PDF"),
        ("empty", Limits(), None, "report.pdf could not be read: it is damaged or not really a PDF"),
        ("mixed", Limits(), ["[page 2]\nonly page two has text"], None),
    ],
)
def test_pdfs(case, limits, contains, note):
    got = extract_pdf(pdf_case(case), "report.pdf", limits)
    if contains is None:
        assert got.text is None
    else:
        assert got.text is not None and all(part in got.text for part in contains), got.text
        assert "[page 1]" not in got.text or case != "mixed"
        assert len(got.text) <= limits.max_chars + 200
    if note is None:
        assert got.note is None
    else:
        assert got.note is not None and got.note.startswith(note), got.note
        assert "\n" not in got.note  # one line, for the model and the person


def test_many_pages_stop_at_the_cap_and_say_so_in_the_text():
    got = extract_pdf(pdf_case("many_pages"), "big.pdf", Limits(max_pages=3))
    assert "[page 4]" not in got.text and got.text.endswith("(only pages 1-3 of the 30 pages of big.pdf were read)")
    assert got.pages == 30


# --- what to prepare ---------------------------------------------------------------------------


def image(key, prepared=False, usable=False):
    return Candidate(key, "image", 1000, prepared, usable)


def doc(key, size, prepared=False, tokens=0):
    return Candidate(key, "pdf", size, prepared, prepared, tokens)


@pytest.mark.parametrize(
    ("candidates", "max_images", "budget", "chosen"),
    [
        ([image(n) for n in range(20)], 10, 10**6, list(range(10))),
        ([image(0, True, True), image(1), image(2, True, True), image(3)], 2, 10**6, [1]),
        ([image(0, True, False), image(1), image(2)], 2, 10**6, [1, 2]),  # a failed image takes no slot
        ([image(0)], 0, 10**6, []),
        ([doc("a", 3000), doc("b", 3000), doc("c", 3000)], 10, 2 * document_estimate(3000, 10**6), ["a", "b"]),
        ([doc("a", 0, prepared=True, tokens=900), doc("b", 300)], 10, 1000, []),
        ([doc("huge", 10**9), doc("small", 300)], 10, 5000, ["small"]),
        ([Candidate("z", "other", 10), image(1), doc("d", 30)], 1, 10**6, [1, "d"]),
    ],
)
def test_plan_preparation(candidates, max_images, budget, chosen):
    assert plan_preparation(candidates, max_images=max_images, budget_tokens=budget, max_chars=10**6) == chosen


def test_a_document_estimate_is_capped_by_the_characters_kept():
    assert document_estimate(10**9, 100_000) == document_estimate(100_000, 100_000) < document_estimate(10**9, 10**9)
