"""The body of every service's Alembic env.py: migrations with a per-service version table."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, engine_from_config, pool


def run_migrations(target_metadata: MetaData) -> None:
    """Apply migrations for the metadata of one service, against the URL set by upgrade_schema."""
    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
