"""Alembic environment for the orchestrator's tables."""

from services.core.migrations import run_migrations
from services.orchestrator.schema import Base

run_migrations(Base.metadata)
