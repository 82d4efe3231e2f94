"""Documents attached in Slack: which files can be read as text, and reading them (pure)."""
