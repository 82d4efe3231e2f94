"""PDFs made in the tests with pypdf: text layers, no text layer (vector drawing only, like a
scan without OCR), encryption, many pages and damaged files."""

from __future__ import annotations

from io import BytesIO

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(
    pages: list[str | None],
    *,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> bytes:
    """One page per item: its text drawn in Helvetica, or (None) a filled rectangle and no text."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        if text is None:
            content = b"0.5 g 72 72 468 648 re f"
        else:
            lines = text.split("\n")
            content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({_escape(line)}) '" for line in lines) + " ET"
            content = content.encode("latin-1")
        stream = DecodedStreamObject()
        stream.set_data(content)
        page[NameObject("/Contents")] = writer._add_object(stream)
    if user_password is not None or owner_password is not None:
        writer.encrypt(
            user_password=user_password or "", owner_password=owner_password or user_password, algorithm="RC4-128"
        )
    buffer = BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_pdf_bomb(pages: int = 40, inflated_bytes: int = 30_000_000, *, variety: float = 0.0008) -> bytes:
    """The PDF of issue 22: `pages` pages sharing one Flate content stream that inflates to
    `inflated_bytes` of text operators drawing nothing (about 85 KB for 40 pages and 30 MB).
    pypdf parses the whole stream again for every page: ~3.5 s of CPU and ~180 MB a page.
    `variety`: the share of operator lines that differ (what keeps zlib from doing better)."""
    import random
    import zlib

    from pypdf.generic import EncodedStreamObject

    rnd = random.Random(22)
    same = b"BT /F1 9 Tf 0 0 Td ET\n"
    lines, size = [], 0
    while size < inflated_bytes:
        if rnd.random() < variety:
            line = f"BT /F1 {rnd.randint(1, 9)} Tf {rnd.randint(0, 99)} 0 Td ET\n".encode()
        else:
            line = same
        lines.append(line)
        size += len(line)
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    stream = EncodedStreamObject()
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    stream._data = zlib.compress(b"".join(lines), 9)
    shared = writer._add_object(stream)
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        page[NameObject("/Contents")] = shared
    buffer = BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
