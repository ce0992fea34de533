"""A pyinfra connector standing for many hosts on this machine (pyinfra's own `@local` stands
for one): `@benchlocal/web-1`, `@benchlocal/web-2`, … each run their operations locally, as
`@local` does. Registered under the `pyinfra.connectors` entry point (pyproject.toml), for the
side-by-side benchmark (bench.peers) only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pyinfra.connectors.local import LocalConnector


class ManyLocalConnector(LocalConnector):
    @staticmethod
    def make_names_data(name: str | None = None) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
        yield f"@benchlocal/{name}", {}, ["@benchlocal"]
