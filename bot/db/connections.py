"""How many database connections each process opens at most (pure), so docs/operations.md, the
engines and `bot check` agree.

Engines never overflow their pool (bot.db.engine): a web process holds at most
`WEB_POOL_SIZE`; a worker process one per job in flight plus `WORKER_EXTRA_CONNECTIONS`
(the control loop's claims and heartbeats, housekeeping) and, on Postgres, one more outside
the pool for LISTEN.
"""

from __future__ import annotations

from dataclasses import dataclass

WEB_POOL_SIZE = 5
WORKER_EXTRA_CONNECTIONS = 2
LISTEN_CONNECTIONS = 1


def worker_pool_size(worker_concurrency: int) -> int:
    return worker_concurrency + WORKER_EXTRA_CONNECTIONS


@dataclass(frozen=True)
class ConnectionBudget:
    web_dyno: int  # every gunicorn process of one web dyno
    worker_dyno: int  # one worker dyno, LISTEN included
    limit: int

    @property
    def one_of_each(self) -> int:
        return self.web_dyno + self.worker_dyno

    @property
    def fits(self) -> bool:
        return self.one_of_each <= self.limit

    def describe(self) -> str:
        text = (
            f"a web dyno uses up to {self.web_dyno} connections and a worker dyno up to {self.worker_dyno}: "
            f"{self.one_of_each} for one of each, of the plan's {self.limit} (DATABASE_CONNECTION_LIMIT)"
        )
        if self.fits:
            spare = self.limit - self.one_of_each
            return text + f"; {spare} to spare (each more worker dyno takes {self.worker_dyno})."
        return text + ": lower WORKER_CONCURRENCY or WEB_CONCURRENCY, or choose a larger Postgres plan."


def connection_budget(*, web_concurrency: int, worker_concurrency: int, limit: int) -> ConnectionBudget:
    return ConnectionBudget(
        web_dyno=web_concurrency * WEB_POOL_SIZE,
        worker_dyno=worker_pool_size(worker_concurrency) + LISTEN_CONNECTIONS,
        limit=limit,
    )
