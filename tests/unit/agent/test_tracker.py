"""The agent's journal of the commands it ran: what a restarted agent finds, and its bound."""

from __future__ import annotations

from pathlib import Path

from agent.tracker import HEADER, JOURNAL, CommandTracker
from deploy.v1 import agent_pb2


def report(command_id: str) -> agent_pb2.ConnectRequest:
    return agent_pb2.ConnectRequest(finished=agent_pb2.CommandFinished(command_id=command_id))


def test_a_restarted_agent_knows_what_was_interrupted_and_what_it_reported(
    tmp_path: Path,
) -> None:
    tracker = CommandTracker(tmp_path, keep=2)
    assert tracker.recover().finished == []
    for command_id in ("d-1:web.example.com:0:ApplicationStop", "d-1:web:1:Install", "d-1:x:2:A"):
        tracker.begin(command_id)
        tracker.end(command_id, report(command_id))
    tracker.begin("d-2:web.example.com:0:ApplicationStop")  # killed while it ran
    tracker.close()

    tracked = CommandTracker(tmp_path, keep=2).recover()
    assert tracked.interrupted == ["d-2:web.example.com:0:ApplicationStop"]
    # The newest two reports, oldest first, to send again (the fleet ignores duplicates).
    assert [r.finished.command_id for r in tracked.finished] == ["d-1:web:1:Install", "d-1:x:2:A"]
    again = CommandTracker(tmp_path, keep=2).recover()
    assert again.interrupted == []  # reported once
    assert len(again.finished) == 2


def test_the_journal_stays_bounded_and_keeps_what_still_runs(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path, keep=3)
    tracker.recover()
    tracker.begin("long")  # still running through every rewrite
    for n in range(50):
        tracker.begin(f"c{n}")
        tracker.end(f"c{n}", report(f"c{n}"))
    # at most twice `keep` commands' start and report, and what still runs
    pair = 2 * HEADER.size + len("c49") + len(report("c49").SerializeToString())
    assert len((tmp_path / JOURNAL).read_bytes()) <= 2 * 3 * pair + HEADER.size + len("long")
    tracker.close()

    tracked = CommandTracker(tmp_path, keep=3).recover()
    assert tracked.interrupted == ["long"]
    assert [r.finished.command_id for r in tracked.finished] == ["c47", "c48", "c49"]


def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path, keep=5)
    tracker.recover()
    tracker.begin("a")
    tracker.end("a", report("a"))
    tracker.close()
    with (tmp_path / JOURNAL).open("ab") as journal:
        journal.write(b"E\x00\x00\x01\x00partial")  # says 256 bytes follow; 7 do

    tracked = CommandTracker(tmp_path, keep=5).recover()
    assert tracked.interrupted == []
    assert [r.finished.command_id for r in tracked.finished] == ["a"]
    assert CommandTracker(tmp_path, keep=5).recover().finished == tracked.finished  # rewritten
