"""Live hook output: the lines a running hook writes go to the fleet as they are written, bounded.

A hook may print without end, and every line crosses the agent's one stream to the fleet and
is stored there, so the stream carries at most `LINES_PER_SECOND` lines a second (after a burst
of `BURST_LINES`) and `LINES_PER_COMMAND` lines per lifecycle event, each cut to 1,024
characters. What is not streamed is counted and said in a note line; the deployment's
scripts.log on the host keeps everything. Lines leave in batches of at most
`BATCH_LINES`: `FLUSH_SECONDS` after the first line of a batch, at once when it is full, and
whatever is left before the event's result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from deploy.hookoutput import OutputLine, OutputStream, cut

LINES_PER_COMMAND = 1000
LINES_PER_SECOND = 50.0
BURST_LINES = 200.0
BATCH_LINES = 100
FLUSH_SECONDS = 0.1

Send = Callable[[list[OutputLine]], None]


class LiveOutput:
    """One lifecycle event's output on its way to the fleet (a token bucket, a batch, a timer).
    Lives on the event loop; `send` must not block."""

    def __init__(self, send: Send, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._clock = clock
        self._tokens = BURST_LINES
        self._refilled = clock()
        self._streamed = 0
        self._dropped = 0
        """Lines not streamed since the last note saying so."""
        self._capped = False
        self._script = ""
        self._batch: list[OutputLine] = []
        self._timer: asyncio.TimerHandle | None = None

    def line(self, stream: OutputStream, script: str, text: str) -> None:
        """A line the hook `script` wrote (without its line break)."""
        self._script = script
        if self._streamed >= LINES_PER_COMMAND:
            if not self._capped:
                self._capped = True
                self._note(
                    script,
                    f"output beyond {LINES_PER_COMMAND} lines is not streamed; the host's "
                    "scripts.log has it all",
                )
            return
        now = self._clock()
        self._tokens = min(BURST_LINES, self._tokens + (now - self._refilled) * LINES_PER_SECOND)
        self._refilled = now
        if self._tokens < 1:
            self._dropped += 1
            return
        self._tokens -= 1
        self._report_dropped(script)
        self._streamed += 1
        self._add(OutputLine(datetime.now(UTC), stream, script, cut(text)))

    def close(self) -> None:
        """The event ended: say what was not streamed, send the rest."""
        self._report_dropped(self._script)
        self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._batch:
            batch, self._batch = self._batch, []
            self._send(batch)

    def _report_dropped(self, script: str) -> None:
        if self._dropped:
            dropped, self._dropped = self._dropped, 0
            self._note(
                script,
                f"{dropped} line{'s' if dropped > 1 else ''} not streamed (more than "
                f"{LINES_PER_SECOND:g} a second); the host's scripts.log has them",
            )

    def _note(self, script: str, text: str) -> None:
        self._add(OutputLine(datetime.now(UTC), OutputStream.AGENT, script, text))

    def _add(self, line: OutputLine) -> None:
        self._batch.append(line)
        if len(self._batch) >= BATCH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
