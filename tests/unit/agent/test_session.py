"""The agent's session state that must stay bounded."""

from __future__ import annotations

from agent.session import SeenCommands


def test_the_agent_remembers_a_bounded_number_of_command_ids() -> None:
    seen = SeenCommands(3)
    for command_id in ["a", "b", "c", "d"]:
        seen.add(command_id)
    assert len(seen) == 3
    assert "a" not in seen
    assert all(c in seen for c in ["b", "c", "d"])
