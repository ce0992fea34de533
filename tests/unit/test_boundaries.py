"""The architecture's import boundaries (STYLE 13), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "fleet", "orchestrator", "traffic", "identity")


def imports(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in (ROOT / package).rglob("*.py"):
        if "v1" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                found += [(path, node.module)]
    return found


def test_agent_imports_nothing_from_services() -> None:
    assert [(p, m) for p, m in imports("agent") if m.startswith("services")] == []


def test_public_face_imports_neither_services_nor_agent() -> None:
    bad = [(p, m) for p, m in imports("deploy") if m.startswith(("services", "agent"))]
    assert bad == []


@pytest.mark.parametrize("service", SERVICES)
def test_services_reach_each_other_only_through_stubs(service: str) -> None:
    others = tuple(f"services.{s}" for s in SERVICES if s != service)
    bad = [(p, m) for p, m in imports(f"services/{service}") if m.startswith(others)]
    assert bad == []


def test_the_shared_plumbing_imports_no_service() -> None:
    """services.core is what the services share; which services exist and how they are put
    together is the composition root's (services/composition.py)."""
    named = tuple(f"services.{s}" for s in SERVICES)
    bad = [(p, m) for p, m in imports("services/core") if m.startswith(named)]
    assert bad == []


AGENT_EDGE = {"convert.py", "session.py", "outbox.py", "identity.py", "tracker.py", "download.py"}
"""The agent's modules that speak the wire: the session and what it sends with (outbox), reads
commands with (convert), proves itself with (identity), journals its reports in (tracker), and
the registry client that streams bundles (download). The rest works on the agent's own types
(spec.py)."""


def test_generated_types_stop_at_the_agents_edge() -> None:
    bad = [
        (p.name, m)
        for p, m in imports("agent")
        if m.startswith("deploy.v1") and p.name not in AGENT_EDGE
    ]
    assert bad == []
