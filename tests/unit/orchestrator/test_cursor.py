"""FleetCursor: the stored cursor never passes a result that is not committed."""

from __future__ import annotations

from services.orchestrator.cursor import FleetCursor


def test_the_cursor_waits_for_the_oldest_result_still_being_recorded() -> None:
    cursor = FleetCursor()
    for sequence in (5, 6, 7):
        cursor.received(sequence, to_record=True)
    assert cursor.allowed_with([6]) == 4  # 5 is still with another runner
    cursor.recorded([6])
    assert cursor.allowed_with([5]) == 6  # 7 is still outstanding
    cursor.recorded([5])
    assert cursor.allowed_with([7]) == 7


def test_results_that_need_no_recording_move_it_once_nothing_is_outstanding() -> None:
    cursor = FleetCursor()
    cursor.received(3, to_record=True)
    cursor.received(4, to_record=False)  # a start update, or an unknown command
    assert cursor.allowed_with([]) == 2
    cursor.recorded([3])
    assert cursor.allowed_with([]) == 4
