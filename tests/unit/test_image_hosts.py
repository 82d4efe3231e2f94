"""Which URLs may receive the bot token (bot.images.hosts.token_allowed)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.images.hosts import token_allowed

SLACK_API = "https://slack.com/api/"
LOCAL_API = "http://127.0.0.1:8123/api/"


@pytest.mark.parametrize(
    ("url", "api_url", "allowed"),
    [
        # Slack's own https hosts, whatever the API URL.
        ("https://files.slack.com/files-pri/T1-F1/download/a.png", SLACK_API, True),
        ("https://files-origin.slack.com/files-pri/T1-F1/a.png?t=xoxe", SLACK_API, True),
        ("https://slack.com/files/x", LOCAL_API, True),
        ("https://FILES.Slack.COM/x", SLACK_API, True),
        ("https://files.slack.com./x", SLACK_API, True),
        ("https://files.slack.com:8443/x", SLACK_API, True),
        # Downgrades and look-alikes.
        ("http://files.slack.com/x", SLACK_API, False),
        ("https://evilslack.com/x", SLACK_API, False),
        ("https://slack.com.evil.example/x", SLACK_API, False),
        ("https://files.slack.co/x", SLACK_API, False),
        ("https://slack-edge.com/x", SLACK_API, False),
        # Authorities that parsers read differently are refused.
        ("https://slack.com@evil.example/x", SLACK_API, False),
        ("https://evil.example@files.slack.com/x", SLACK_API, False),
        ("https://evil.example\\@files.slack.com/x", SLACK_API, False),
        ("https://files.slack.com%2f@evil.example/x", SLACK_API, False),
        ("https://files.slack.com /x", SLACK_API, False),
        ("https://files.slack.com:99999/x", SLACK_API, False),
        # The configured API host: exact scheme, host and port, even over http.
        ("http://127.0.0.1:8123/files/a.png", LOCAL_API, True),
        ("http://127.0.0.1:8124/files/a.png", LOCAL_API, False),
        ("https://127.0.0.1:8123/files/a.png", LOCAL_API, False),
        ("http://localhost:8123/files/a.png", LOCAL_API, False),
        ("http://127.0.0.1/files/a.png", LOCAL_API, False),
        ("http://127.0.0.1:8123/files/a.png", SLACK_API, False),
        ("https://proxy.example/files/a", "https://proxy.example:443/api/", True),
        ("http://proxy.example:80/files/a", "http://proxy.example/api/", True),
        # Not http(s) at all, or not a URL.
        ("ftp://files.slack.com/x", SLACK_API, False),
        ("files.slack.com/x", SLACK_API, False),
        ("", SLACK_API, False),
        ("https:///x", SLACK_API, False),
    ],
)
def test_token_allowed(url, api_url, allowed):
    assert token_allowed(url, api_url) is allowed


@given(
    label=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
    tld=st.sampled_from(["com", "net", "example", "io"]),
)
def test_hosts_outside_slack_never_get_the_token(label, tld):
    host = f"{label}.{tld}"
    if host == "slack.com":
        return
    for url in (f"https://{host}/f", f"https://{host}.evil.example/f", f"https://slack.com.{host}/f"):
        assert not token_allowed(url, SLACK_API)
    assert token_allowed(f"https://{label}.slack.com/f", SLACK_API)
