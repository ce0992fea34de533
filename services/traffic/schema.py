"""The traffic service's tables: target groups and their targets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.core.columns import Json
from services.core.db import Base


@dataclass(frozen=True)
class GroupSettings:
    """A target group's provider fields, kept together in one column."""

    load_balancer: str = ""
    haproxy_backend: str = ""


def _settings_from_json(raw: Mapping[str, Any]) -> GroupSettings:
    """Keys this version does not use (an older one's) are ignored."""
    return GroupSettings(str(raw.get("load_balancer", "")), str(raw.get("haproxy_backend", "")))


SETTINGS = Json[GroupSettings](dataclasses.asdict, _settings_from_json)


class TargetGroupRow(Base):
    __tablename__ = "traffic_target_groups"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    port: Mapped[int] = mapped_column(Integer)
    deregistration_delay_seconds: Mapped[int] = mapped_column(Integer)
    settings: Mapped[GroupSettings] = mapped_column(SETTINGS)


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
