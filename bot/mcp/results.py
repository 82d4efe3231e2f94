"""An MCP tool's result as the text the model reads (pure).

Text parts are kept as they are; links to resources become Slack links (``<uri|name>``), so the
step in the stream lists them as sources; embedded text resources are kept with their URI;
images and audio are named, not sent (the model would need them as user content). A result the
server marks as an error becomes a short sentence.
"""

from __future__ import annotations

import json
from typing import Any

ERROR_DETAIL_CHARS = 300


def result_text(result: Any) -> str:
    """The text of a successful result (`CallToolResult`)."""
    parts = [_part_text(part) for part in (getattr(result, "content", None) or [])]
    parts = [part for part in parts if part]
    if not parts and getattr(result, "structured_content", None) is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    return "\n".join(parts) if parts else "Done."


def error_sentence(tool_label: str, result: Any) -> str:
    """A short sentence for a result the server marked as an error."""
    detail = " ".join(result_text(result).split())
    if len(detail) > ERROR_DETAIL_CHARS:
        detail = detail[: ERROR_DETAIL_CHARS - 1] + "…"
    return f"{tool_label} reported an error: {detail}" if detail and detail != "Done." else f"{tool_label} failed."


def _part_text(part: Any) -> str:
    kind = getattr(part, "type", None)
    if kind == "text":
        return part.text
    if kind == "resource_link":
        label = getattr(part, "title", None) or getattr(part, "name", None) or str(part.uri)
        return f"<{part.uri}|{label}>"
    if kind == "resource":
        resource = part.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return f"{resource.uri}:\n{text}"
        return f"<{resource.uri}> ({getattr(resource, 'mime_type', None) or 'binary'}, not shown)"
    if kind in ("image", "audio"):
        return f"[{kind} ({getattr(part, 'mime_type', '') or 'unknown type'}), not shown]"
    return ""
