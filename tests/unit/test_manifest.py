from bot.slack.manifest import BOT_EVENTS, BOT_SCOPES, SlashCommand, build_manifest


def test_manifest_has_the_sections_slack_requires_and_derived_urls():
    manifest = build_manifest(url="https://my-bot.herokuapp.com/", commands=[SlashCommand("ask", "Ask", "[q]")])
    assert {"display_information", "features", "oauth_config", "settings"} <= manifest.keys()
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"] == "https://my-bot.herokuapp.com/slack/events"
    assert manifest["settings"]["interactivity"] == {
        "is_enabled": True,
        "request_url": "https://my-bot.herokuapp.com/slack/events",
    }
    assert manifest["oauth_config"]["redirect_urls"] == ["https://my-bot.herokuapp.com/slack/oauth_redirect"]
    assert manifest["features"]["slash_commands"][0]["command"] == "/ask"
    assert manifest["features"]["slash_commands"][0]["url"] == "https://my-bot.herokuapp.com/slack/events"
    assert set(events["bot_events"]) == set(BOT_EVENTS)
    assert "app_mention" in events["bot_events"] and "message.im" in events["bot_events"]
    assert {"chat:write", "files:read", "app_mentions:read"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["settings"]["socket_mode_enabled"] is False


def test_socket_mode_manifest_has_no_request_urls():
    manifest = build_manifest(socket_mode=True, commands=[SlashCommand("ask", "Ask")])
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in manifest["settings"]["event_subscriptions"]
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert sorted(BOT_SCOPES) == list(BOT_SCOPES)


def test_the_manifest_subscribes_to_the_stop_button_with_the_scopes_it_needs():
    from bot.slack.manifest import build_manifest

    manifest = build_manifest(url="https://example.herokuapp.com")
    assert "agent_session_stopped" in manifest["settings"]["event_subscriptions"]["bot_events"]
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert "assistant:write" in scopes and "chat:write" in scopes  # agent sessions, thread-based
    assert manifest["settings"]["interactivity"]["is_enabled"]  # the 👍/👎 clicks
