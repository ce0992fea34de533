"""Agents enrolling at the same moment (a new fleet's first boot) with one join token: exactly
as many get in as the token has uses, never more. On SQLite a transaction that reads the
token and then spends a use takes the write lock first, so the next one reads what it wrote
(the driver's own transactions began at the first write, after the read: two enrolments could
both spend the same last use)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.core.clock import utcnow
from services.core.db import open_database
from services.core.errors import Unauthenticated
from services.fleet.enrolment import new_token
from services.fleet.store import FleetStore

USES = 20
AGENTS = 40


def test_a_token_enrols_exactly_its_uses_when_agents_race_for_it(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str | BaseException], list[str]]:
        db = await open_database(f"sqlite:///{tmp_path / 'fleet.db'}", "fleet")
        store = FleetStore(db)
        token = new_token(None, (), USES, 3600, utcnow())
        await store.add_join_token(token)

        async def issue(name: str) -> str:
            await asyncio.sleep(0.01)  # the certificate is issued while the transaction is open
            return name

        outcomes = await asyncio.gather(
            *(store.enrol(token.digest, f"web-{i}", utcnow(), issue) for i in range(AGENTS)),
            return_exceptions=True,
        )
        registered = await store.registered_names()
        await db.close()
        return outcomes, registered

    outcomes, registered = asyncio.run(scenario())
    enrolled = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if not isinstance(o, str)]
    assert len(enrolled) == USES
    assert all(isinstance(error, Unauthenticated) for error in refused), refused[:3]
    assert sorted(registered) == sorted(enrolled)
