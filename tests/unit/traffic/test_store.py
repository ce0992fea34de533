"""The traffic store on SQLite: a target group and what the load balancer does with each
instance — serving, draining, its weight and its address — read back as recorded; an address
set by hand wins over the host's; unknown groups are NotFound and a name is taken once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.core.db import open_database
from services.core.errors import AlreadyExists, InvalidArgument, NotFound
from services.traffic.domain import Provider, Target, TargetGroup, TargetState
from services.traffic.store import TrafficStore

WEB = TargetGroup("web", Provider.HAPROXY, 8080, 5, load_balancer="edge", haproxy_backend="be")


@contextlib.asynccontextmanager
async def store_on(tmp_path: Path) -> AsyncIterator[TrafficStore]:
    db = await open_database(f"sqlite:///{tmp_path / 'traffic.db'}", "traffic")
    try:
        yield TrafficStore(db)
    finally:
        await db.close()


async def test_a_group_reads_back_as_created_and_its_name_is_taken_once(tmp_path: Path) -> None:
    async with store_on(tmp_path) as store:
        await store.create(WEB)
        assert await store.get("web") == WEB
        assert await store.names() == ["web"]
        with pytest.raises(AlreadyExists, match="'web' already exists"):
            await store.create(WEB)
        await store.delete("web")
        with pytest.raises(NotFound, match="'web' does not exist"):
            await store.get("web")


async def test_an_instance_serves_drains_and_is_reweighed_as_recorded(tmp_path: Path) -> None:
    async with store_on(tmp_path) as store:
        await store.create(WEB)
        await store.record("web", "i-1", "10.0.0.1:8080", 100, TargetState.SERVING)
        await store.record("web", "i-2", "10.0.0.2:8080", 100, TargetState.SERVING)
        await store.record_weights("web", {"i-1": 25, "i-9": 50})  # i-9 is not in the group
        await store.record("web", "i-2", "10.0.0.2:8080", 0, TargetState.DRAINING)
        targets = (await store.get("web")).targets
        assert targets == (
            Target("i-1", "10.0.0.1:8080", 25, TargetState.SERVING),
            Target("i-2", "10.0.0.2:8080", 0, TargetState.DRAINING),
        )
        with pytest.raises(NotFound):
            await store.record("gone", "i-1", "10.0.0.1:8080", 100, TargetState.SERVING)


async def test_an_address_set_by_hand_wins_over_the_host_until_it_is_forgotten(
    tmp_path: Path,
) -> None:
    async with store_on(tmp_path) as store:
        await store.create(WEB)
        await store.set_address("web", "i-1", "127.0.0.1:9001")
        group = await store.get("web")
        assert group.target("i-1") == Target("i-1", "127.0.0.1:9001", 0, TargetState.UNUSED, True)
        assert group.address_for("i-1", "10.0.0.1") == "127.0.0.1:9001"
        assert group.address_for("i-2", "10.0.0.2") == "10.0.0.2:8080"
        with pytest.raises(InvalidArgument, match="host: instance 'i-3' has no registered"):
            group.address_for("i-3", "")
        await store.set_address("web", "i-1", "")
        assert (await store.get("web")).address_for("i-1", "10.0.0.1") == "10.0.0.1:8080"
