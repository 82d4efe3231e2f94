"""Tools: one definition serves slash commands and model function calling.

`registry` holds tools and checks permissions, `schema` turns type hints and docstrings into
function schemas, `slash_args` reads slash-command text, `runner` runs calls (never raising),
`plugins` loads third-party tools, `builtin` holds ours.
"""
