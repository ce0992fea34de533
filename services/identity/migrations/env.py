"""Alembic environment for the identity service's tables."""

import services.identity.schema  # noqa: F401  (registers the tables)
from services.core.db import Base
from services.core.migrations import run_migrations

run_migrations(Base.metadata)
