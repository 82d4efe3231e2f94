"""What a Slack file is, from its metadata before download and its bytes after (pure).

A file is an image (sent as an image), a PDF (its text layer is read), text (read as UTF-8:
``text/*``, source code, JSON, CSV, Markdown, YAML...), or something else, which the model is
told about by name, type and size. Before download the mimetype, Slack's ``filetype`` and the
name's extension decide; a file Slack could not type (``application/octet-stream``, no
mimetype) is downloaded when small enough and its first bytes decide.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["image", "pdf", "text", "sniff", "other"]

TEXT_MIMETYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/x-ndjson",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/x-toml",
        "application/javascript",
        "application/x-javascript",
        "application/typescript",
        "application/x-sh",
        "application/x-shellscript",
        "application/x-python",
        "application/x-python-code",
        "application/sql",
        "application/x-sql",
        "application/csv",
        "application/x-httpd-php",
        "application/x-ruby",
        "application/x-perl",
        "application/graphql",
        "application/x-tex",
    }
)
# Slack's `filetype` values for text and code (https://docs.slack.dev/reference/objects/file-object).
TEXT_FILETYPES = frozenset(
    (
        "text markdown post csv tsv json yaml xml html css javascript typescript python ruby go rust java kotlin "
        "scala swift c cpp csharp objc php perl shell bash powershell sql diff patch dockerfile makefile toml ini "
        "r matlab haskell clojure lua groovy elixir erlang dart vb vbscript fsharp ocaml lisp scheme tcl verilog "
        "vhdl apex coffeescript cfm d pascal puppet smalltalk velocity xquery latex jsx tsx vue svelte graphql "
        "protobuf terraform hcl nginx apache properties gitignore log"
    ).split()
)
TEXT_EXTENSIONS = frozenset(
    (
        "txt text md markdown rst adoc csv tsv json jsonl ndjson yaml yml toml ini cfg conf env xml html htm css "
        "scss sass less js mjs cjs jsx ts tsx vue svelte py pyi rb go rs java kt kts scala swift c h cc cpp cxx hpp "
        "cs m mm php pl pm sh bash zsh fish ps1 sql diff patch dockerfile makefile mk gradle groovy r jl lua ex exs "
        "erl hrl dart vb fs ml mli lisp clj cljs edn scm tcl v sv vhd tex bib graphql gql proto tf hcl properties "
        "log gitignore editorconfig lock"
    ).split()
)
GENERIC_MIMETYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
PDF_MAGIC = b"%PDF-"


def extension(name: str) -> str:
    base = (name or "").rsplit("/", 1)[-1].lower()
    if "." not in base:
        return base  # Makefile, Dockerfile
    return base.rsplit(".", 1)[-1]


def kind_from_metadata(meta: dict) -> Kind:
    """What to do with a file before downloading it."""
    mimetype = str(meta.get("mimetype") or "").split(";", 1)[0].strip().lower()
    filetype = str(meta.get("filetype") or "").lower()
    ext = extension(str(meta.get("name") or meta.get("title") or ""))
    if mimetype.startswith("image/"):
        return "image"
    if mimetype == "application/pdf" or filetype == "pdf" or (mimetype in GENERIC_MIMETYPES and ext == "pdf"):
        return "pdf"
    if mimetype.startswith("text/") or mimetype in TEXT_MIMETYPES or mimetype.endswith(("+json", "+xml", "+yaml")):
        return "text"
    if filetype in TEXT_FILETYPES or ext in TEXT_EXTENSIONS:
        return "text" if mimetype in GENERIC_MIMETYPES or filetype in TEXT_FILETYPES else "other"
    if mimetype in GENERIC_MIMETYPES:
        return "sniff"
    return "other"


def looks_like_text(data: bytes) -> bool:
    """Content sniffing: UTF-8 (a BOM allowed, a character cut at the end forgiven) with no NUL
    bytes and few control characters."""
    sample = data[:8192]
    if not sample:
        return True
    if b"\x00" in sample:
        return False
    try:
        decoded = sample.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(sample) - 3:  # not just a multi-byte character cut by the sample
            return False
        decoded = sample[: error.start].decode("utf-8")
    controls = sum(1 for char in decoded if ord(char) < 32 and char not in "\t\n\r\f\v\x1b")
    return controls <= len(decoded) // 100


def kind_from_content(data: bytes) -> Kind:
    """What a downloaded file of unknown type is."""
    if data.startswith(PDF_MAGIC) or data[:1024].lstrip().startswith(PDF_MAGIC):
        return "pdf"
    return "text" if looks_like_text(data) else "other"


__all__ = ["Kind", "kind_from_content", "kind_from_metadata", "looks_like_text"]
