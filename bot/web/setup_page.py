"""`GET /setup`: what to do after deploying (pure: the page from the app's URL and settings).

app.json's `success_url` points here, so the Heroku button ends on the next steps: create
the Slack app from a manifest already filled in with this app's URL, then set its secrets.
"""

from __future__ import annotations

import html
import json
from urllib.parse import urlsplit

from bot.slack.manifest import build_manifest


def public_base_url(host: str | None, forwarded_proto: str | None, scheme: str) -> str | None:
    """The app's URL as its visitors see it (Heroku's router sets X-Forwarded-Proto), or None
    when the Host header is not a plain host[:port]."""
    host = (host or "").strip()
    parts = urlsplit(f"//{host}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    if not host or not parts.hostname or parts.path or parts.query or parts.username:
        return None
    proto = (forwarded_proto or scheme or "https").split(",")[0].strip().lower()
    return f"{'http' if proto == 'http' else 'https'}://{host}"


def render_setup_page(
    base_url: str, *, commands=(), slack_configured: bool, oauth: bool, app_name: str | None = None
) -> str:
    manifest = json.dumps(build_manifest(url=base_url, commands=commands), indent=2)
    app = app_name or "YOUR-APP"
    status = (
        "<p class=ok>Slack is configured. Invite the bot to a channel and mention it.</p>"
        if slack_configured
        else "<p class=todo>Slack is not configured yet: follow the steps below.</p>"
    )
    oauth_step = (
        f'<li>Install it to a workspace from <a href="{html.escape(base_url)}/slack/install">'
        f"{html.escape(base_url)}/slack/install</a> (OAuth mode: each workspace installs this way).</li>"
        if oauth
        else "<li>Install it to your workspace (<em>Install App</em>), then copy the <em>Bot User OAuth Token</em> "
        "(xoxb-…) and the <em>Signing Secret</em> (Basic Information) into the app:"
        f"<pre>heroku config:set -a {html.escape(app)} SLACK_BOT_TOKEN=xoxb-… SLACK_SIGNING_SECRET=…</pre>"
        "For many workspaces, set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET instead of SLACK_BOT_TOKEN, "
        "and install from /slack/install.</li>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Set up your Slack AI bot</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}}
pre{{background:#f4f4f6;padding:1rem;overflow:auto;font-size:13px}}.ok{{color:#1a7f37}}.todo{{color:#9a6700}}</style>
</head><body>
<h1>Your Slack AI bot is deployed</h1>
{status}
<ol>
<li>Open <a href="https://api.slack.com/apps">api.slack.com/apps</a> → <em>Create New App</em> →
<em>From a manifest</em>, pick the workspace, and paste the manifest below (it points Slack at
{html.escape(base_url)}).</li>
{oauth_step}
<li>Check everything: <pre>heroku run -a {html.escape(app)} -- bot check</pre></li>
<li>Invite the bot to a channel (<code>/invite @AI Assistant</code>) and mention it, or send it a DM.</li>
</ol>
<p>Health: <a href="{html.escape(base_url)}/healthz">/healthz</a> (queue depth, oldest job, limiter use).</p>
<h2>Manifest</h2>
<pre>{html.escape(manifest)}</pre>
</body></html>
"""
