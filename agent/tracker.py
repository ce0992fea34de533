"""What a restarted agent must know of the commands its previous process handled, kept in one
journal file.

Each command's start and each report is a record appended to the journal, which stays open.
Creating a file is the dearest part of a no-op lifecycle event on a host's disk (about a
millisecond on the CI machine's ext4, against microseconds for an append); a file per running
command and per report cost two creations, a rename and an unlink per event. A record is a kind
byte, a length and the payload, written with one `write`: a killed process leaves whole
records; a torn last record (the host lost power) is ignored. The journal is rewritten with
what is still needed (the newest reports and the commands still running) at recovery and when
it holds twice as many reports as are kept.
"""

from __future__ import annotations

import os
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from google.protobuf.message import DecodeError

from deploy.private import private_dir
from deploy.v1 import agent_pb2

REPORTS_KEPT = 100
"""Finished reports re-sent after a reconnect (the fleet ignores ones it already has)."""
JOURNAL = "journal"
BEGIN = b"B"
END = b"E"
HEADER = struct.Struct(">cI")
"""A record's kind (BEGIN: the payload is a command id; END: a ConnectRequest with its report)
and the payload's length."""


@dataclass(frozen=True)
class TrackedCommands:
    """What a restarted agent finds of the commands its previous process handled."""

    interrupted: list[str]
    """Running when it stopped: reported Failed, never run again."""
    finished: list[agent_pb2.ConnectRequest]
    """Their reports, oldest first: sent again (the fleet may not have received them), and
    their commands never run again."""


class CommandTracker:
    """A command's start and its report, journalled: a restarted agent reports what was
    interrupted, re-sends the reports its previous process may not have got through, and runs
    none of those commands again. The newest `keep` reports are kept."""

    def __init__(self, directory: Path, keep: int = REPORTS_KEPT) -> None:
        self._path = private_dir(directory) / JOURNAL
        self._keep = keep
        self._running: OrderedDict[str, None] = OrderedDict()
        self._reports: deque[bytes] = deque(maxlen=keep)
        self._reports_written = 0
        self._file: BinaryIO | None = None

    def recover(self) -> TrackedCommands:
        """What the previous process left: the commands it was running (forgotten once
        returned: reported once) and the kept reports."""
        running: OrderedDict[str, None] = OrderedDict()
        reports: deque[agent_pb2.ConnectRequest] = deque(maxlen=self._keep)
        for kind, payload in _records(self._path):
            if kind == BEGIN:
                running[payload.decode("utf-8", "replace")] = None
                continue
            try:
                report = agent_pb2.ConnectRequest.FromString(payload)
            except DecodeError:
                continue
            running.pop(report.finished.command_id, None)
            reports.append(report)
        self._reports.extend(report.SerializeToString() for report in reports)
        self._rewrite()
        return TrackedCommands(list(running), list(reports))

    def begin(self, command_id: str) -> None:
        self._running[command_id] = None
        self._append(BEGIN, command_id.encode())

    def end(self, command_id: str, report: agent_pb2.ConnectRequest) -> None:
        """Keep the report in place of the command's start."""
        payload = report.SerializeToString()
        self._running.pop(command_id, None)
        self._reports.append(payload)
        self._append(END, payload)
        self._reports_written += 1
        if self._reports_written >= 2 * self._keep:
            self._rewrite()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _append(self, kind: bytes, payload: bytes) -> None:
        if self._file is None:
            self._file = self._path.open("ab")
        self._file.write(HEADER.pack(kind, len(payload)) + payload)
        self._file.flush()

    def _rewrite(self) -> None:
        """The journal anew, with only the kept reports and the running commands (written
        whole, then renamed over the old one)."""
        self.close()
        partial = self._path.with_name(f"{JOURNAL}.partial")
        with partial.open("wb") as handle:
            for payload in self._reports:
                handle.write(HEADER.pack(END, len(payload)) + payload)
            for command_id in self._running:
                encoded = command_id.encode()
                handle.write(HEADER.pack(BEGIN, len(encoded)) + encoded)
        os.replace(partial, self._path)
        self._reports_written = len(self._reports)


def _records(path: Path) -> list[tuple[bytes, bytes]]:
    """The journal's whole records, in order; reading stops at a torn or unknown one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    offset = 0
    while offset + HEADER.size <= len(data):
        kind, size = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        if kind not in (BEGIN, END) or start + size > len(data):
            break
        records.append((kind, data[start : start + size]))
        offset = start + size
    return records
