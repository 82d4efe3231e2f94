import json
import re
from html import unescape

import pytest

from bot.web.setup_page import public_base_url, render_setup_page


@pytest.mark.parametrize(
    "host, proto, scheme, expected",
    [
        ("my-bot.herokuapp.com", "https", "http", "https://my-bot.herokuapp.com"),
        ("localhost:3000", None, "http", "http://localhost:3000"),
        ("localhost:3000", "http, https", "http", "http://localhost:3000"),
        ("bot.example.com", None, "", "https://bot.example.com"),
        ("", "https", "http", None),
        ("evil.com/path", "https", "http", None),
        ("user@evil.com", "https", "http", None),
        ("host:notaport", "https", "http", None),
        (None, None, "http", None),
    ],
)
def test_public_base_url(host, proto, scheme, expected):
    assert public_base_url(host, proto, scheme) == expected


def test_the_page_carries_a_manifest_for_this_url_and_escapes_it():
    page = render_setup_page("https://a.example.com", slack_configured=False, oauth=False)
    manifest = json.loads(unescape(re.search(r"<h2>Manifest</h2>\s*<pre>(.*)</pre>", page, re.S).group(1)))
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://a.example.com/slack/events"
    assert "SLACK_BOT_TOKEN" in page and "not configured yet" in page


def test_oauth_mode_points_to_the_install_path():
    page = render_setup_page("https://a.example.com", slack_configured=True, oauth=True)
    assert 'href="https://a.example.com/slack/install"' in page
    assert "Slack is configured" in page
