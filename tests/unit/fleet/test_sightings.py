"""The fleet records agents' connections and disconnections in groups (a fleet restart is a
thousand at once): each instance keeps its latest sighting, and its address from its latest
connection; names it does not know change nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.core.db import open_database
from services.fleet.domain import Sighting
from services.fleet.store import FleetStore

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_a_group_of_sightings_keeps_each_instances_latest(tmp_path: Path) -> None:
    async def scenario() -> dict[str, tuple[datetime | None, str]]:
        db = await open_database(f"sqlite:///{tmp_path / 'fleet.db'}", "fleet")
        store = FleetStore(db)
        for name in ("web-1", "web-2", "web-3"):
            await store.register(name, [])
        later = T0 + timedelta(seconds=5)
        written = await store.mark_seen(
            [
                Sighting("web-1", T0, "10.0.0.1"),
                Sighting("web-2", T0, "10.0.0.2"),
                Sighting("web-2", later),  # connected, then gone: its address is kept
                Sighting("ghost", T0, "10.0.0.9"),
                Sighting("web-3", T0, "10.0.0.3"),
                Sighting("web-3", later, "10.0.0.33"),  # reconnected from elsewhere
            ]
        )
        assert written == [None] * 6
        instances = {i.name: (i.last_seen_at, i.address) for i in await store.all()}
        await db.close()
        return instances

    instances = asyncio.run(scenario())
    assert set(instances) == {"web-1", "web-2", "web-3"}
    assert instances["web-1"] == (T0, "10.0.0.1")
    assert instances["web-2"] == (T0 + timedelta(seconds=5), "10.0.0.2")
    assert instances["web-3"] == (T0 + timedelta(seconds=5), "10.0.0.33")
