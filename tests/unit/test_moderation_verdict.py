import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.moderation.policy import VERDICT_FUNCTION
from bot.moderation.verdict import (
    MAX_REASON_CHARS,
    MalformedVerdict,
    Verdict,
    could_not_check,
    parse_verdict,
    unreadable_answer,
)

CATEGORIES = ["sexual content", "graphic violence", "personal data"]


def call(**arguments) -> list[tuple[str, str]]:
    return [(VERDICT_FUNCTION, json.dumps(arguments))]


GOOD = {"verdict": "flag", "categories": ["personal data"], "confidence": 0.8, "reason": "A card number is visible."}


@pytest.mark.parametrize(
    ("tool_calls", "expected"),
    [
        (call(**GOOD), Verdict("flag", ("personal data",), 0.8, "A card number is visible.")),
        (call(**{**GOOD, "verdict": "allow", "categories": []}), Verdict("allow", (), 0.8, GOOD["reason"])),
        (call(**{**GOOD, "verdict": " Remove "}), Verdict("remove", ("personal data",), 0.8, GOOD["reason"])),
        # names match ignoring case and spacing; unknown ones are dropped, repeats kept once
        (
            call(**{**GOOD, "categories": ["Personal  Data", "weapons", "personal data", "graphic violence"]}),
            Verdict("flag", ("personal data", "graphic violence"), 0.8, GOOD["reason"]),
        ),
        (call(**{**GOOD, "confidence": 1}), Verdict("flag", ("personal data",), 1.0, GOOD["reason"])),
        (call(**{**GOOD, "confidence": 0}), Verdict("flag", ("personal data",), 0.0, GOOD["reason"])),
        (call(**{**GOOD, "reason": "  two\nlines "}), Verdict("flag", ("personal data",), 0.8, "two lines")),
        # another tool first: the verdict call is found
        ([("other", "{}"), *call(**GOOD)], Verdict("flag", ("personal data",), 0.8, GOOD["reason"])),
    ],
)
def test_well_formed_verdicts(tool_calls, expected):
    assert parse_verdict(tool_calls, CATEGORIES) == expected


@pytest.mark.parametrize(
    ("tool_calls", "problem"),
    [
        ([], "did not call"),
        ([("something_else", json.dumps(GOOD))], "did not call"),
        ([(VERDICT_FUNCTION, "{not json")], "not valid JSON"),
        ([(VERDICT_FUNCTION, "[1, 2]")], "not a JSON object"),
        (call(**{**GOOD, "verdict": "delete"}), "unknown verdict"),
        (call(**{**GOOD, "verdict": None}), "unknown verdict"),
        (call(**{k: v for k, v in GOOD.items() if k != "verdict"}), "unknown verdict"),
        (call(**{**GOOD, "categories": "personal data"}), "categories"),
        (call(**{**GOOD, "categories": [1]}), "categories"),
        (call(**{**GOOD, "confidence": "0.9"}), "confidence is not a number"),
        (call(**{**GOOD, "confidence": True}), "confidence is not a number"),
        (call(**{k: v for k, v in GOOD.items() if k != "confidence"}), "confidence is not a number"),
        (call(**{**GOOD, "confidence": 1.5}), "between 0 and 1"),
        (call(**{**GOOD, "confidence": -0.1}), "between 0 and 1"),
        (call(**{**GOOD, "reason": ["a"]}), "reason"),
    ],
)
def test_malformed_answers_say_what_was_wrong(tool_calls, problem):
    with pytest.raises(MalformedVerdict) as caught:
        parse_verdict(tool_calls, CATEGORIES)
    assert problem in caught.value.problem


def test_not_finite_confidence_is_malformed():
    with pytest.raises(MalformedVerdict):
        parse_verdict([(VERDICT_FUNCTION, '{"verdict": "allow", "categories": [], "confidence": NaN}')], CATEGORIES)


def test_a_long_reason_is_cut_to_one_short_line():
    verdict = parse_verdict(call(**{**GOOD, "reason": "word " * 500}), CATEGORIES)
    assert len(verdict.reason) <= MAX_REASON_CHARS and verdict.reason.endswith("…")


def test_failures_become_flags_for_a_person():
    assert could_not_check("the file is empty") == Verdict("flag", (), None, "could not be checked: the file is empty")
    unreadable = unreadable_answer("unknown verdict 'x'")
    assert unreadable.verdict == "flag" and unreadable.confidence is None and "unknown verdict" in unreadable.reason


@given(st.text(max_size=200))
def test_any_arguments_text_either_parses_or_is_malformed(text):
    try:
        verdict = parse_verdict([(VERDICT_FUNCTION, text)], CATEGORIES)
    except MalformedVerdict:
        return
    assert verdict.verdict in ("allow", "flag", "remove") and 0 <= verdict.confidence <= 1
