"""`bot chat`: talk to the bot in a terminal through the same pipeline as Slack, without Slack."""
