from bot.stats import format_stats

STATS = {
    "queue": {"queued": 3, "running": 1, "dead": 0, "oldest_queued_age_seconds": 12.34},
    "limiter": {"window_seconds": 60.0, "requests": 5, "max_requests": 200, "tokens": 900, "max_tokens": 800000},
    "usage_day": "2026-11-25",
    "workspaces": [
        {"team_id": "T1", "requests_today": 2, "tokens_today": 50, "requests_7d": 9, "tokens_7d": 400, "users_7d": 3}
    ],
}


def test_format_stats_lines():
    lines = format_stats(STATS).splitlines()
    assert lines[0] == "queue: 3 queued, 1 running, 0 dead; oldest queued: 12.3 s"
    assert lines[1] == "limiter inference (60 s window): 5/200 requests, 900/800000 tokens"
    assert lines[3] == "  T1: today 2 requests, 50 tokens; 7 days 9 requests, 400 tokens, 3 users"


def test_every_attachment_has_its_line():
    attachments = [
        {"name": "inference", **STATS["limiter"]},
        {
            "name": "inference_2",
            "window_seconds": 60.0,
            "requests": 7,
            "max_requests": 150,
            "tokens": 0,
            "max_tokens": 800000,
        },
    ]
    lines = format_stats({**STATS, "attachments": attachments}).splitlines()
    assert lines[1:3] == [
        "limiter inference (60 s window): 5/200 requests, 900/800000 tokens",
        "limiter inference_2 (60 s window): 7/150 requests, 0/800000 tokens",
    ]


def test_no_usage_and_an_empty_queue_say_so():
    empty = {**STATS, "queue": {**STATS["queue"], "oldest_queued_age_seconds": None}, "workspaces": []}
    text = format_stats(empty)
    assert "oldest queued: none" in text and "none in the last 7 days" in text


def test_feedback_shows_the_share_of_thumbs_up_and_each_day():
    stats = {
        **STATS,
        "feedback": {
            "positive": 3,
            "negative": 1,
            "since": "2026-11-19",
            "days": [
                {"day": "2026-11-24", "positive": 1, "negative": 1},
                {"day": "2026-11-25", "positive": 2, "negative": 0},
            ],
        },
    }
    lines = format_stats(stats).splitlines()
    assert lines[-3:] == [
        "feedback since 2026-11-19: 3 👍, 1 👎 (75% 👍)",
        "  2026-11-24: 1 👍, 1 👎",
        "  2026-11-25: 2 👍, 0 👎",
    ]
    none = {**STATS, "feedback": {"positive": 0, "negative": 0, "since": "2026-11-19", "days": []}}
    assert format_stats(none).splitlines()[-1] == "feedback since 2026-11-19: 0 👍, 0 👎 (no clicks yet)"
