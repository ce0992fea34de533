"""The traffic service's tables: target groups and their targets."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.core.db import Base


class TargetGroupRow(Base):
    __tablename__ = "traffic_target_groups"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    port: Mapped[int] = mapped_column(Integer)
    deregistration_delay_seconds: Mapped[int] = mapped_column(Integer)
    settings: Mapped[str] = mapped_column(Text)
    """JSON: the provider's fields (HAProxy socket and backend, ELBv2 ARN, region, endpoint)."""


class TargetRow(Base):
    __tablename__ = "traffic_targets"

    group_name: Mapped[str] = mapped_column(
        String(100),
        ForeignKey("traffic_target_groups.name", ondelete="CASCADE"),
        primary_key=True,
    )
    instance_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    address: Mapped[str] = mapped_column(String(255))
    weight: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    address_set: Mapped[bool] = mapped_column(Boolean)
