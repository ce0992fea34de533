"""Running hook scripts: in order, own process group, timeout, output to the log and a tail."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from agent.appspec import MAX_EVENT_SECONDS, Script, bundle_path
from agent.errors import ErrorCode, EventFailed

TAIL_CHARACTERS = 2048
KILL_GRACE_SECONDS = 5.0


class OutputTail:
    """The newest whole output entries totalling at most 2,048 characters (as CodeDeploy keeps)."""

    def __init__(self) -> None:
        self._entries: deque[str] = deque()
        self._size = 0

    def add(self, entry: str) -> None:
        self._entries.append(entry)
        self._size += len(entry)
        while self._size > TAIL_CHARACTERS and self._entries:
            self._size -= len(self._entries.popleft())

    def text(self) -> str:
        return "".join(self._entries)


class ScriptLog:
    """Appends CodeDeploy-format records to the deployment's scripts.log and keeps the tail."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", errors="replace")
        self.tail = OutputTail()

    def record(self, message: str, tail: bool = False) -> None:
        self._file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")
        self._file.flush()
        if tail:
            self.tail.add(message)

    def close(self) -> None:
        self._file.close()


async def run_scripts(
    event: str, scripts: tuple[Script, ...], archive: Path, env: Mapping[str, str], log_path: Path
) -> None:
    """Run the event's scripts in order; the first failure raises EventFailed. Each script has
    its own timeout, and all of an event's scripts together get at most one hour (CodeDeploy's
    limit per lifecycle event)."""
    if not scripts:
        return
    script_log = ScriptLog(log_path)
    event_deadline = time.monotonic() + MAX_EVENT_SECONDS
    try:
        script_log.record(f"LifecycleEvent - {event}\n")
        for script in scripts:
            script_log.record(f"Script - {script.location}\n")
            remaining = max(1, int(event_deadline - time.monotonic()))
            if remaining < script.timeout_seconds:
                script = dataclasses.replace(script, timeout_seconds=remaining)
            await _run_one(script, archive, env, script_log)
    finally:
        script_log.close()


def _command(script: Script, path: Path) -> list[str]:
    if not script.runas:
        return [str(path)]
    if os.geteuid() != 0:
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED,
            f"runas {script.runas!r} needs the agent to run as root",
            script_name=script.location,
        )
    # -s: accounts without a login shell (nobody, www-data) can still run hooks, as meant.
    return ["su", "-s", "/bin/sh", script.runas, "-c", str(path)]


async def _run_one(
    script: Script, archive: Path, env: Mapping[str, str], script_log: ScriptLog
) -> None:
    path = bundle_path(archive, script.location)
    if not path.is_file():
        raise EventFailed(
            ErrorCode.SCRIPT_MISSING,
            f"Script does not exist at specified location: {path}",
            script_name=script.location,
        )
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            raise EventFailed(
                ErrorCode.SCRIPT_NOT_EXECUTABLE, str(exc), script_name=script.location
            ) from exc
    try:
        process = await asyncio.create_subprocess_exec(
            *_command(script, path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED,
            f"Script at specified location: {script.location} failed with error {exc}",
            script_name=script.location,
            log_tail=script_log.tail.text(),
        ) from exc
    readers = asyncio.gather(
        _pump(process.stdout, "stdout", script_log), _pump(process.stderr, "stderr", script_log)
    )
    try:
        await asyncio.wait_for(asyncio.gather(process.wait(), readers), script.timeout_seconds)
    except TimeoutError:
        await _kill_group(process)
        readers.cancel()
        raise EventFailed(
            ErrorCode.SCRIPT_TIMED_OUT,
            f"Script at specified location: {script.location} failed to complete "
            f"in {script.timeout_seconds} seconds",
            script_name=script.location,
            log_tail=script_log.tail.text(),
        ) from None
    if process.returncode != 0:
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED,
            f"Script at specified location: {script.location} failed with exit "
            f"code {process.returncode}",
            script_name=script.location,
            log_tail=script_log.tail.text(),
        )


async def _pump(stream: asyncio.StreamReader | None, name: str, script_log: ScriptLog) -> None:
    assert stream is not None, "stdout and stderr are pipes"
    while line := await stream.readline():
        script_log.record(f"[{name}]{line.decode('utf-8', errors='replace')}", tail=True)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the script's whole process group, SIGKILL it if it does not go."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
