"""Reading the model's moderation verdict out of its tool calls (pure).

The model is forced to call ``record_moderation_verdict``; `parse_verdict` checks that it
did and that the arguments make sense, or raises MalformedVerdict saying what was wrong. The
caller asks once more on a malformed answer, then settles for `unreadable_answer` (a flag, so
a person looks at it). A file that could not be downloaded or decoded is `could_not_check`,
also a flag: moderation never silently lets an image through because it failed.

Lenient where nothing is lost: verdict names ignore case and surrounding spaces, category
names ignore case, and categories outside the policy are dropped. Strict elsewhere: no call,
JSON that is not an object, an unknown verdict, categories that are not a list of strings,
and a confidence that is not a number from 0 to 1 are all malformed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.moderation.policy import VERDICT_FUNCTION, VERDICTS

MAX_REASON_CHARS = 300


class MalformedVerdict(Exception):
    """The answer holds no usable verdict; `problem` is a short phrase for the audit trail."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class Verdict:
    verdict: str  # allow | flag | remove
    categories: tuple[str, ...] = ()
    confidence: float | None = None  # None when no model judged it
    reason: str = ""


def parse_verdict(tool_calls: Sequence[tuple[str, str]], categories: Sequence[str]) -> Verdict:
    """The verdict in `tool_calls` ((name, JSON arguments) pairs); `categories`: the policy's names."""
    arguments_text = next((arguments for name, arguments in tool_calls if name == VERDICT_FUNCTION), None)
    if arguments_text is None:
        raise MalformedVerdict(f"the model did not call {VERDICT_FUNCTION}")
    try:
        arguments = json.loads(arguments_text or "{}")
    except ValueError:
        raise MalformedVerdict("the verdict's arguments are not valid JSON") from None
    if not isinstance(arguments, dict):
        raise MalformedVerdict("the verdict's arguments are not a JSON object")

    verdict = arguments.get("verdict")
    if not isinstance(verdict, str) or verdict.strip().lower() not in VERDICTS:
        raise MalformedVerdict(f"unknown verdict {str(verdict)[:40]!r}")

    raw_categories = arguments.get("categories", [])
    if not isinstance(raw_categories, list) or not all(isinstance(item, str) for item in raw_categories):
        raise MalformedVerdict("categories is not a list of names")
    by_folded = {name.casefold(): name for name in categories}
    named: list[str] = []
    for item in raw_categories:
        known = by_folded.get(" ".join(item.split()).casefold())
        if known is not None and known not in named:
            named.append(known)

    confidence = arguments.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not math.isfinite(confidence):
        raise MalformedVerdict("confidence is not a number")
    if not 0 <= confidence <= 1:
        raise MalformedVerdict("confidence is not between 0 and 1")

    reason = arguments.get("reason", "")
    if not isinstance(reason, str):
        raise MalformedVerdict("reason is not text")
    return Verdict(verdict.strip().lower(), tuple(named), float(confidence), short_reason(reason))


def short_reason(text: str) -> str:
    """One line of at most MAX_REASON_CHARS characters."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1].rstrip() + "…"


def could_not_check(problem: str) -> Verdict:
    """The image could not be looked at (download, decoding, or the model refused): a person should."""
    return Verdict("flag", (), None, short_reason(f"could not be checked: {problem}"))


def unreadable_answer(problem: str) -> Verdict:
    """Two malformed answers in a row: flag for a person instead of guessing."""
    return Verdict("flag", (), None, short_reason(f"the model's verdict could not be read twice ({problem})"))
