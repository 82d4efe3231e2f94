"""Imports every model so Base.metadata knows the whole schema (Alembic, tests)."""

from bot.agent import models as _agent  # noqa: F401
from bot.channel_settings import models as _channel_settings  # noqa: F401
from bot.db.base import Base
from bot.history import models as _history  # noqa: F401
from bot.idempotency import models as _idempotency  # noqa: F401
from bot.inference import models as _inference  # noqa: F401
from bot.limits import models as _limits  # noqa: F401
from bot.mcp import status as _mcp_status  # noqa: F401
from bot.moderation import models as _moderation  # noqa: F401
from bot.queue import models as _queue  # noqa: F401
from bot.slack import oauth_tables as _slack_oauth  # noqa: F401
from bot.slack import org_workspaces as _org_workspaces  # noqa: F401
from bot.tools import approvals as _approvals  # noqa: F401

metadata = Base.metadata
