"""Alembic environment for the traffic service's tables."""

from services.core.migrations import run_migrations
from services.traffic.schema import Base

run_migrations(Base.metadata)
