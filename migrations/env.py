"""Alembic environment: the URL comes from our settings, the schema from our models."""

from alembic import context
from sqlalchemy import pool

from bot.config import load_settings
from bot.db.engine import make_engine
from bot.models import metadata

config = context.config
url = config.attributes.get("database_url") or load_settings().database_url

# Indexes a migration creates for one dialect only, which the models cannot declare (e.g. the
# PostgreSQL full-text index of 0003): autogenerate must not offer to drop them.
DIALECT_ONLY_INDEXES = frozenset({"ix_thread_messages_text_search"})


def include_name(name, type_, parent_names) -> bool:
    return not (type_ == "index" and name in DIALECT_ONLY_INDEXES)


def run_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(url) if url.startswith("sqlite") else None
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
