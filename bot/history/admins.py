"""Who counts as an admin of the workspace the bot is installed in (pure).

Slack Connect brings in people from other organizations whose `users.info` still says
`is_admin` / `is_owner` — for their own workspace. They are never ours: a person is an admin
here only when Slack says admin or owner, they are not `is_stranger`, and they belong to the
installing workspace (same `team_id`) or to its Enterprise Grid org (same enterprise id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_workspace_admin(user: Mapping[str, Any], *, team_id: str, enterprise_id: str | None = None) -> bool:
    """`user`: a `users.info` user object; `team_id`/`enterprise_id`: the installation's."""
    if user.get("is_stranger") or user.get("deleted") or user.get("is_bot"):
        return False
    enterprise_user = user.get("enterprise_user") or {}
    same_team = bool(team_id) and user.get("team_id") == team_id
    same_org = bool(enterprise_id) and enterprise_user.get("enterprise_id") == enterprise_id
    if not (same_team or same_org):
        return False
    if same_team and (user.get("is_admin") or user.get("is_owner")):
        return True
    # Grid: an org admin or owner is an admin of every workspace of the org.
    return bool(same_org and (enterprise_user.get("is_admin") or enterprise_user.get("is_owner")))
