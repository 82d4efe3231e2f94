"""The estimate stored with a history row needs nothing registered: a process that writes
history without importing bot.conversation stores the same estimates as the worker."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from bot.conversation.budget import estimate_entry_tokens
from bot.history.estimates import row_estimates, stored_tokens
from bot.history.thread import ThreadEntry

ROW = SimpleNamespace(role="user", text="why did the deploy fail? " * 20, files=None, deleted=False, tool_calls=None)


def test_a_row_is_estimated_without_importing_the_conversation_layer():
    script = (
        "import sys\n"
        "from types import SimpleNamespace\n"
        "from bot.history.estimates import row_estimates\n"
        f"row = SimpleNamespace(role='user', text={ROW.text!r}, files=None, deleted=False, tool_calls=None, "
        "tool_call_id=None)\n"
        "print(row_estimates(row, ())[0], 'bot.conversation' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    tokens, conversation_loaded = int(out[0]), out[1] == "True"
    assert not conversation_loaded
    assert tokens == stored_tokens(ThreadEntry("1.0", "user", ROW.text)) > 0


def test_the_stored_part_is_what_the_budget_counts_for_an_entry_without_attribution():
    row = SimpleNamespace(**vars(ROW), tool_call_id=None)
    tokens, image_tokens, images = row_estimates(row, ())
    assert (image_tokens, images) == (0, 0)
    assert estimate_entry_tokens(ThreadEntry("1.0", "user", ROW.text, tokens=tokens)) == estimate_entry_tokens(
        ThreadEntry("1.0", "user", ROW.text)
    )
