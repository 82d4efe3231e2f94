"""What a line typed into `bot chat` asks for (pure).

/exit, /quit              leave (so does end of input)
/new                      start a new conversation
/image PATH [question]    attach a local image
/settings [<setting> <value>]  the terminal's settings: the local workspace's defaults
look at @shot.png please  attach every @PATH that names an image file (by its extension)
anything else             a message
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class ChatLine:
    kind: str  # "message" | "exit" | "new" | "settings" | "empty" | "error"
    text: str = ""
    image_paths: tuple[str, ...] = field(default=())


def _is_image_path(word: str) -> bool:
    return word.lower().endswith(IMAGE_EXTENSIONS)


def parse_line(line: str) -> ChatLine:
    stripped = line.strip()
    if not stripped:
        return ChatLine("empty")
    command, _, rest = stripped.partition(" ")
    if command in ("/exit", "/quit"):
        return ChatLine("exit")
    if command == "/new":
        return ChatLine("new")
    if command == "/settings":
        return ChatLine("settings", rest.strip())
    if command == "/image":
        try:
            words = shlex.split(rest)
        except ValueError:
            return ChatLine("error", "could not read the path (unbalanced quotes?)")
        if not words:
            return ChatLine("error", "usage: /image PATH [question]")
        return ChatLine("message", " ".join(words[1:]), (words[0],))
    words = stripped.split()
    images = tuple(w[1:] for w in words if w.startswith("@") and len(w) > 1 and _is_image_path(w[1:]))
    text = " ".join(w for w in words if not (w.startswith("@") and w[1:] in images)) if images else stripped
    return ChatLine("message", text, images)
