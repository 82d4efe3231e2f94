from dataclasses import replace
from functools import cache
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.conversation.budget import (
    _OMITTED_NOTE_TOKENS,
    TRUNCATION_MARK,
    estimate_entry_tokens,
    fit_to_budget,
    omitted_marker,
    omitted_note,
    stored_tokens,
)
from bot.history.messages import image_label, sendable_entries, thread_to_messages
from bot.history.thread import FileNote, ImagePart, ThreadEntry, ToolCall
from bot.limits.tokens import estimate_image_tokens, estimate_messages_tokens, estimate_text_tokens

FIXED = 500
WORDS = "the quick brown fox jumps over the lazy dog and keeps running through the field "


def user(ts, text, uid="U1", **kwargs):
    return ThreadEntry(ts=ts, role="user", text=text, user_id=uid, user_name="Name", **kwargs)


def bot(ts, text, calls=(), **kwargs):
    return ThreadEntry(ts=ts, role="assistant", text=text, tool_calls=tuple(calls), **kwargs)


def result(ts, call_id, text):
    return ThreadEntry(ts=ts, role="tool", text=text, tool_call_id=call_id)


def call(call_id):
    return ToolCall(id=call_id, name="search", arguments='{"query": "llamas"}')


@cache
def png(width: int, height: int) -> ImagePart:
    buffer = BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, format="PNG")
    return ImagePart(media_type="image/png", data=buffer.getvalue(), width=width, height=height)


def cost(*entries):
    return sum(estimate_entry_tokens(entry) for entry in entries)


NOTE = _OMITTED_NOTE_TOKENS  # the note saying how many entries were left out


def timestamps(result_):
    return [entry.ts for entry in result_.entries if not entry.extra.get("note")]


def conversation(turns: int, words_per_message: int = 40):
    entries = []
    for i in range(turns):
        entries.append(user(f"{i}.0", f"question {i}: " + WORDS * (words_per_message // 16 + 1), uid=f"U{i % 3}"))
        entries.append(bot(f"{i}.1", f"answer {i}: " + WORDS * (words_per_message // 16 + 1)))
    return entries


# --- estimates --------------------------------------------------------------------------------


def test_entry_estimate_counts_text_images_files_and_tool_calls():
    plain = user("1", "hello there")
    with_image = user("1", "hello there", images=(png(800, 600),))
    with_file = user("1", "hello there", files=(FileNote("a.pdf", "application/pdf", 2048, "too big"),))
    label = estimate_text_tokens(image_label(with_image.images[0], with_image))
    assert estimate_entry_tokens(with_image) == estimate_entry_tokens(plain) + estimate_image_tokens(800, 600) + label
    assert estimate_entry_tokens(with_file) > estimate_entry_tokens(plain)
    short_args = bot("2", "", calls=[ToolCall("c1", "f", "{}")])
    long_args = bot("2", "", calls=[ToolCall("c1", "f", '{"text": "' + "x" * 400 + '"}')])
    assert estimate_entry_tokens(long_args) > estimate_entry_tokens(short_args) + 100


# --- dropping ---------------------------------------------------------------------------------


def test_everything_fits_when_the_budget_allows():
    entries = conversation(5)
    fitted = fit_to_budget(entries, budget_tokens=10**6, fixed_tokens=FIXED)
    assert fitted.entries == entries and fitted.dropped == 0 and fitted.fits
    assert fitted.estimated_tokens == FIXED + cost(*entries)


def test_oldest_turns_go_first_but_the_first_message_stays():
    entries = conversation(5)  # u0 a0 u1 a1 ... u4 a4
    budget = FIXED + NOTE + cost(entries[0], *entries[-3:])
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    assert timestamps(fitted) == ["0.0", "3.1", "4.0", "4.1"]
    assert fitted.dropped == 6 and fitted.fits
    assert fitted.estimated_tokens == budget


def test_the_newest_user_message_stays_even_when_newer_replies_go():
    entries = conversation(3)
    entries[-1] = bot("2.1", WORDS * 200)  # a huge final reply
    budget = FIXED + NOTE + cost(entries[0], entries[4])
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    assert timestamps(fitted) == ["0.0", "2.0"] and fitted.fits


def test_a_big_newer_turn_is_not_skipped_to_keep_older_small_ones():
    entries = [user("1", "first"), bot("2", "small"), user("3", "small"), bot("4", WORDS * 100), user("5", "newest")]
    budget = FIXED + NOTE + cost(entries[0], entries[1], entries[2], entries[4])
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    # Oldest first: "2" and "3" go before "4", and the context stays one unbroken stretch.
    assert timestamps(fitted) == ["1", "5"] and fitted.dropped == 3


def test_one_token_less_drops_one_more_turn():
    entries = conversation(4)
    budget = FIXED + NOTE + cost(entries[0], *entries[-3:])
    assert len(timestamps(fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED))) == 4
    assert len(timestamps(fit_to_budget(entries, budget_tokens=budget - 1, fixed_tokens=FIXED))) == 3


def tool_thread():
    return [
        user("1", "find llamas " + WORDS),
        bot("2", "", calls=[call("c1"), call("c2")]),
        result("3", "c1", "llama facts " + WORDS * 3),
        result("4", "c2", "more llama facts " + WORDS * 3),
        bot("5", "Llamas are great. " + WORDS),
        user("6", "thanks! " + WORDS),
    ]


def test_a_tool_call_and_its_results_are_dropped_together():
    entries = tool_thread()
    everything = fit_to_budget(entries, budget_tokens=10**6, fixed_tokens=FIXED).estimated_tokens
    kept_sets = set()
    for budget in range(FIXED + NOTE + cost(entries[0], entries[-1]), everything + 1):
        fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
        kept = set(timestamps(fitted))
        assert {"2", "3", "4"} <= kept or not ({"2", "3", "4"} & kept), budget
        assert fitted.estimated_tokens <= budget and fitted.fits
        kept_sets.add(frozenset(kept))
    assert len(kept_sets) >= 3  # the range really went through several cut points


def test_results_stored_far_from_their_call_still_travel_with_it():
    entries = [
        user("1", "start"),
        bot("2", "", calls=[call("c1")]),
        user("3", "meanwhile " + WORDS * 20, uid="U2"),
        result("4", "c1", "late result"),
        user("5", "newest"),
    ]
    budget = FIXED + NOTE + cost(entries[0], entries[4]) + 1
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    assert timestamps(fitted) == ["1", "5"]
    assert fitted.dropped == 3


def test_deleted_and_orphaned_entries_are_not_counted_as_dropped():
    entries = [user("1", "a"), user("2", "gone", deleted=True), result("3", "ghost", "x"), user("4", "b")]
    fitted = fit_to_budget(entries, budget_tokens=10**6, fixed_tokens=FIXED)
    assert timestamps(fitted) == ["1", "4"] and fitted.dropped == 0


def test_empty_thread():
    assert fit_to_budget([], budget_tokens=100, fixed_tokens=50).fits
    empty = fit_to_budget([], budget_tokens=10, fixed_tokens=50)
    assert not empty.fits and empty.entries == [] and empty.estimated_tokens == 50


# --- truncation and the no-fit path ---------------------------------------------------------


def test_a_huge_first_message_is_truncated_and_says_so():
    first = user("1", "BEGIN " + WORDS * 2000)
    entries = [first, bot("2", "ok"), user("3", "what did I paste?")]
    budget = FIXED + 2000
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    assert fitted.fits and fitted.estimated_tokens <= budget
    assert timestamps(fitted) == ["1", "3"] and fitted.dropped == 1
    head = fitted.entries[0].text
    assert head.startswith("BEGIN the quick") and head.endswith("\n" + TRUNCATION_MARK)
    assert first.text.startswith(head[: -len(TRUNCATION_MARK) - 1])
    assert estimate_entry_tokens(fitted.entries[0]) > 1500  # cut to fit, not to nothing


def test_a_single_huge_message_is_truncated():
    fitted = fit_to_budget([user("1", WORDS * 5000)], budget_tokens=FIXED + 300, fixed_tokens=FIXED)
    assert fitted.fits and fitted.entries[0].text.endswith(TRUNCATION_MARK)


@pytest.mark.parametrize(
    ("entries", "budget"),
    [
        # The newest question alone is bigger than the budget.
        ([user("1", "hi"), bot("2", "hello"), user("3", WORDS * 3000)], FIXED + 1000),
        # The fixed part (prompt, tools, output cap) already exceeds the budget.
        ([user("1", "hi")], FIXED - 1),
        # Images cannot be truncated.
        ([user("1", "look", images=(png(1568, 1568),) * 3)], FIXED + 2000),
    ],
)
def test_when_nothing_can_fit_the_result_says_so(entries, budget):
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    assert not fitted.fits
    assert fitted.estimated_tokens > budget


# --- properties -------------------------------------------------------------------------------

CALL_IDS = ["c1", "c2", "c3", "c4"]
SIZES = [(40, 30), (800, 600), (2000, 300)]

entry_strategy = st.one_of(
    st.builds(
        lambda words, deleted, sizes: user(
            "", WORDS[: words * 5], deleted=deleted, images=tuple(png(*s) for s in sizes)
        ),
        st.integers(0, 16),
        st.booleans(),
        st.lists(st.sampled_from(SIZES), max_size=2),
    ),
    st.builds(
        lambda words, ids: bot("", WORDS[: words * 5], calls=[call(i) for i in ids]),
        st.integers(0, 16),
        st.lists(st.sampled_from(CALL_IDS), max_size=2, unique=True),
    ),
    st.builds(
        lambda call_id, words: result("", call_id, WORDS[: words * 5]), st.sampled_from(CALL_IDS), st.integers(0, 16)
    ),
)


def numbered(entries):
    return [ThreadEntry(**{**entry.__dict__, "ts": str(i)}) for i, entry in enumerate(entries)]


@settings(max_examples=200, deadline=None)
@given(st.lists(entry_strategy, max_size=12).map(numbered), st.integers(0, 6000), st.integers(0, 3))
def test_budget_properties(entries, budget_above_fixed, max_images):
    budget = FIXED + budget_above_fixed
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    sendable = sendable_entries(entries)
    kept = timestamps(fitted)
    notes = [entry for entry in fitted.entries if entry.extra.get("note")]
    assert len(notes) == (1 if fitted.left_out else 0) and fitted.left_out == fitted.dropped

    assert fitted.fits == (fitted.estimated_tokens <= budget)
    assert fitted.dropped + len(kept) == len(sendable)
    # An upper bound of what the limiter will count for these messages (system prompt excluded).
    messages = thread_to_messages(fitted.entries, system_prompt="", max_images=max_images)
    assert FIXED + estimate_messages_tokens(messages[1:]) <= fitted.estimated_tokens
    # Kept entries are the sendable ones, in order; only the first turn's head may have been cut.
    by_ts = {entry.ts: entry for entry in sendable}
    assert kept == [ts for ts in by_ts if ts in set(kept)]
    heads = [e for e in sendable if e.role != "tool"]
    if heads:
        assert all(entry == by_ts[entry.ts] for entry in fitted.entries if entry.ts != heads[0].ts)
        assert heads[0].ts in kept
        users = [e for e in heads if e.role == "user"]
        if users:
            assert users[-1].ts in kept
    # Oldest first: apart from the first turn and the newest user turn, what is kept is a run of
    # the newest turns.
    if heads:
        pinned = {heads[0].ts, *[e.ts for e in heads if e.role == "user"][-1:]}
        kept_heads = [e.ts in kept for e in heads if e.ts not in pinned]
        assert kept_heads == sorted(kept_heads)
    # A tool call and its results are kept or dropped together.
    result_ts = {e.tool_call_id: e.ts for e in sendable if e.role == "tool"}
    call_ts = {c.id: e.ts for e in sendable if e.role == "assistant" for c in e.tool_calls}
    for call_id, ts in result_ts.items():
        assert (ts in kept) == (call_ts[call_id] in kept)


# --- nothing is left out silently -------------------------------------------------------------


def test_left_out_entries_are_counted_in_a_note_after_the_first_turn():
    entries = conversation(5)
    budget = FIXED + NOTE + cost(entries[0], *entries[-3:])
    fitted = fit_to_budget(entries, budget_tokens=budget, fixed_tokens=FIXED)
    assert (
        fitted.entries[1].text
        == omitted_note(6)
        == ("(6 earlier messages of this thread left out here to fit the model's context.)")
    )
    assert fitted.left_out == 6 and fitted.estimated_tokens <= budget


def test_entries_not_loaded_are_counted_with_those_dropped():
    entries = conversation(3)
    with_marker = [entries[0], omitted_marker("0.5", 40), *entries[1:]]
    fitted = fit_to_budget(with_marker, budget_tokens=10**6, fixed_tokens=FIXED)
    assert fitted.dropped == 0 and fitted.left_out == 40
    assert [e.ts for e in fitted.entries] == ["0.0", "0.0", "0.1", "1.0", "1.1", "2.0", "2.1"]
    assert fitted.entries[1].text == omitted_note(40)
    messages = thread_to_messages(fitted.entries, system_prompt="")
    assert "40 earlier messages" in messages[1]["content"]
    assert FIXED + estimate_messages_tokens(messages[1:]) <= fitted.estimated_tokens


def test_stored_estimates_are_used_instead_of_recounting():
    entry = user("1", "hello")
    assert estimate_entry_tokens(entry) == estimate_entry_tokens(replace(entry, tokens=stored_tokens(entry)))
    assert estimate_entry_tokens(replace(entry, tokens=1000)) > 1000
