"""Alembic environment for the fleet's tables."""

from services.core.migrations import run_migrations
from services.fleet.schema import Base

run_migrations(Base.metadata)
