"""What an agent reports is stored bounded and storable, never refused."""

from __future__ import annotations

from deploy.v1 import common_pb2
from services.core.convert import DIAGNOSTIC_LIMITS, diagnostics_from_proto


def test_agent_diagnostics_are_bounded_and_free_of_nul() -> None:
    reported = common_pb2.Diagnostics(
        script_name="s" * 10_000,
        message="m\x00" * 10_000,
        log_tail="old" * 100_000 + "the end",
    )
    diagnostics = diagnostics_from_proto(reported)
    assert len(diagnostics.script_name) == DIAGNOSTIC_LIMITS["script_name"]
    assert len(diagnostics.message) == DIAGNOSTIC_LIMITS["message"]
    assert "\x00" not in diagnostics.message
    assert diagnostics.log_tail.endswith("the end")
    assert len(diagnostics.log_tail) == DIAGNOSTIC_LIMITS["log_tail"]
