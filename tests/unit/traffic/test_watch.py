"""When the HAProxy watch puts the runtime servers back."""

from __future__ import annotations

import pytest

from services.traffic.watch import restarted


@pytest.mark.parametrize(
    ("previous", "current", "restore"),
    [
        (None, 10, False),  # first sight: the start-up restore covers it
        (10, 10, False),  # the same process
        (10, None, False),  # down: nothing to put servers into yet
        (10, 11, True),  # another process answers
    ],
)
def test_a_restart_is_a_new_process_behind_the_socket(
    previous: int | None, current: int | None, restore: bool
) -> None:
    assert restarted(previous, current) is restore
