import logging

from bot.logs import LogfmtFormatter, scrub


def test_tokens_and_keys_are_scrubbed():
    line = scrub("calling with xoxb-123-456-abc and Authorization: Bearer sk-live-1 and xapp-1-A1-2")
    assert "xoxb-123" not in line and "sk-live-1" not in line and "xapp-1" not in line
    assert line.count("[redacted]") == 3


def test_logfmt_prefix():
    record = logging.LogRecord("bot.queue", logging.INFO, __file__, 1, "job done id=%d", (7,), None)
    assert LogfmtFormatter().format(record) == "level=info logger=bot.queue job done id=7"
