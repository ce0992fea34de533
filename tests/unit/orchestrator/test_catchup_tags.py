"""Catch-up asks the fleet for the tags of a few changed instances one by one, and reads a
burst of them (a fleet restart: every agent reconnecting) in one listing."""

from __future__ import annotations

import asyncio
from typing import Any

from services.core.tags import Tag
from services.orchestrator.catchup import TAG_CALLS_AT_MOST, CatchUp

WEB = [Tag("role", "web")]


class Fleet:
    def __init__(self) -> None:
        self.single_calls = 0
        self.listings = 0

    async def instance_tags(self, name: str) -> list[Tag] | None:
        self.single_calls += 1
        return WEB if name != "gone" else None

    async def registered_instances(self) -> dict[str, list[Tag]]:
        self.listings += 1
        return {f"web-{i}": WEB for i in range(100)}


def tags_of(names: list[str]) -> tuple[list[list[Tag] | None], Fleet]:
    fleet = Fleet()
    unused: Any = None
    catch_up = CatchUp(unused, unused, fleet, unused)  # type: ignore[arg-type]
    return asyncio.run(catch_up._tags_of(names)), fleet


def test_a_few_changed_instances_are_asked_for_one_by_one() -> None:
    tags, fleet = tags_of(["web-1", "gone"])
    assert tags == [WEB, None]
    assert (fleet.single_calls, fleet.listings) == (2, 0)


def test_a_burst_of_changed_instances_is_read_in_one_listing() -> None:
    names = [f"web-{i}" for i in range(TAG_CALLS_AT_MOST)] + ["gone"]
    tags, fleet = tags_of(names)
    assert tags == [WEB] * TAG_CALLS_AT_MOST + [None]
    assert (fleet.single_calls, fleet.listings) == (0, 1)
