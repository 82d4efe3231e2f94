"""Settings per channel, with workspace-wide defaults, set by admins in Slack (`/settings`, the App Home).

- ``names``: the settings, their allowed values and how a typed value is read (pure);
- ``resolve``: what applies to one answer, and where each value comes from (pure);
- ``command``: what `/settings …` asks for, and the text it answers (pure);
- ``models`` / ``store``: the table scoped by workspace, with its history of changes;
- ``reader``: the worker's few-seconds cache of what applies in a channel;
- ``command_job``: the `/settings` job (never a tool: the model can neither see nor call it).
"""
