"""The Slack app: the Bolt app factory, its listeners, Socket Mode and the manifest's commands.

The top of the house: it enqueues jobs and answers Slack; nothing below imports it.
"""
