"""Alembic environment for the registry's tables."""

from services.core.migrations import run_migrations
from services.registry.schema import Base

run_migrations(Base.metadata)
