"""The fleet's tables: instances, their tags, commands for agents and the updates agents report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.columns import DIAGNOSTICS, Json, UtcDateTime
from services.core.db import Base
from services.core.diagnostics import Diagnostics
from services.core.tags import Tag

TAGS = Json[tuple[Tag, ...]](
    lambda tags: [[t.key, t.value] for t in tags],
    lambda raw: tuple(Tag(key, value) for key, value in raw),
)
"""Tags as a JSON list of [key, value] pairs."""


class InstanceRow(Base):
    __tablename__ = "fleet_instances"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deregistered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    address: Mapped[str] = mapped_column(String(255), default="")


class InstanceTagRow(Base):
    __tablename__ = "fleet_instance_tags"

    instance_name: Mapped[str] = mapped_column(
        String(100), ForeignKey("fleet_instances.name", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class CommandRow(Base):
    __tablename__ = "fleet_commands"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    instance_name: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    """The command exactly as the agent receives it (opaque to the fleet)."""
    deployment_id: Mapped[str | None] = mapped_column(String(64))
    """Its spec's deployment: the key its hook output is read by."""
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    """When the fleet fails the command unless its agent acts first: acknowledges it (start
    deadline), finishes it (end deadline) or answers a cancel. None once it has finished."""


class CommandUpdateRow(Base):
    __tablename__ = "fleet_command_updates"

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(String(255))
    instance_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    diagnostics: Mapped[Diagnostics] = mapped_column(DIAGNOSTICS)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class CommandOutputRow(Base):
    """A line of hook output an agent streamed for a command (bounded per command)."""

    __tablename__ = "fleet_command_output"
    __table_args__ = (
        Index("ix_fleet_command_output_deployment", "deployment_id", "sequence"),
        Index("ix_fleet_command_output_command", "command_id"),
        Index("ix_fleet_command_output_stored_at", "stored_at"),
    )

    sequence: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(String(255))
    deployment_id: Mapped[str] = mapped_column(String(64))
    instance_name: Mapped[str] = mapped_column(String(100))
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """When the fleet stored it (what retention goes by)."""
    written_at: Mapped[datetime] = mapped_column(UtcDateTime())
    """When the agent read it from the hook."""
    stream: Mapped[str] = mapped_column(String(8))
    script: Mapped[str] = mapped_column(String(512))
    text: Mapped[str] = mapped_column(Text)


class JoinTokenRow(Base):
    """A join token, by the SHA-256 of its text (the text itself is shown once, never kept)."""

    __tablename__ = "fleet_join_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_name: Mapped[str | None] = mapped_column(String(100))
    """A registration's token enrols that instance only; None: any new name."""
    tags: Mapped[tuple[Tag, ...]] = mapped_column(TAGS)
    """Given to instances that enrol with the token."""
    uses_left: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
