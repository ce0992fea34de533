"""Running hook scripts: in order, own process group, timeout, output to the log and a tail.

A hook gets an explicit environment (never the agent's own: it may hold AWS keys) and, with
`runas`, is started as that user directly — uid, gid and supplementary groups set in the child,
no `su` and no shell — so it stays in the process group that a timeout kills. It starts in the
revision's directory: the agent's directories are private (0700), so a `runas` user reaches
its script by the relative path `./<location>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pwd
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from agent.appspec import MAX_EVENT_SECONDS, Script, bundle_path
from agent.errors import ErrorCode, EventFailed
from agent.metrics import HOOK_SECONDS
from agent.output import LiveOutput
from deploy.hookoutput import OutputStream

TAIL_CHARACTERS = 2048
READ_CHUNK = 65536
LONGEST_LINE = 65536
"""Output without a line break for this long is taken as a line of its own."""
KILL_GRACE_SECONDS = 5.0
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USER_PATH = "/usr/local/bin:/usr/bin:/bin"


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
    event: str,
    scripts: tuple[Script, ...],
    archive: Path,
    env: Mapping[str, str],
    log_path: Path,
    live: LiveOutput | None = None,
) -> None:
    """Run the event's scripts in order; the first failure raises EventFailed. Each script has
    its own timeout, and all of an event's scripts together get at most one hour (CodeDeploy's
    limit per lifecycle event). Every output line goes to scripts.log and to `live`."""
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
            started = time.monotonic()
            try:
                await _run_one(script, archive, env, script_log, live)
            finally:
                HOOK_SECONDS.labels(event).observe(time.monotonic() - started)
    finally:
        script_log.close()


@dataclasses.dataclass(frozen=True)
class HookUser:
    """Who a script runs as: the agent's own user, or the appspec's `runas` user."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    switch: bool
    """True when the child must change user (runas names another user than the agent's)."""

    def groups(self) -> list[int]:
        return os.getgrouplist(self.name, self.gid)

    def environment(self) -> dict[str, str]:
        """PATH, HOME, LANG and the login names, as a login as this user would have them."""
        return {
            "PATH": USER_PATH if self.switch else os.environ.get("PATH", ROOT_PATH),
            "HOME": self.home,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "USER": self.name,
            "LOGNAME": self.name,
            "SHELL": self.shell,
        }


def hook_user(script: Script) -> HookUser:
    """The user `script` runs as; EventFailed naming the user if it cannot be."""
    me = pwd.getpwuid(os.geteuid())
    if not script.runas or script.runas == me.pw_name:
        return HookUser(me.pw_name, me.pw_uid, me.pw_gid, me.pw_dir, me.pw_shell, False)
    failure = f"Script at specified location: {script.location} run as user {script.runas} failed"
    if os.geteuid() != 0:
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED,
            f"{failure}: runas needs the agent to run as root",
            script_name=script.location,
        )
    try:
        entry = pwd.getpwnam(script.runas)
    except KeyError:
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED, f"{failure}: no such user", script_name=script.location
        ) from None
    return HookUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir, "/bin/sh", True)


def check_not_modifiable(path: Path, archive: Path, location: str) -> None:
    """Refuse a script that a user other than root or the agent's could change: the script and
    every directory from it up to the revision's directory must be owned by one of them and
    not writable by group or others."""
    trusted = {0, os.geteuid()}
    for item in [path, *path.relative_to(archive).parents]:
        target = item if item.is_absolute() else archive / item
        info = target.stat()
        if info.st_uid not in trusted or info.st_mode & 0o022:
            raise EventFailed(
                ErrorCode.SCRIPT_FAILED,
                f"Script at specified location: {location} can be modified by other users "
                f"({target} has mode {oct(info.st_mode & 0o7777)}, owner uid {info.st_uid}): "
                "refusing to run it",
                script_name=location,
            )


async def _run_one(
    script: Script,
    archive: Path,
    env: Mapping[str, str],
    script_log: ScriptLog,
    live: LiveOutput | None,
) -> None:
    path = bundle_path(archive, script.location)
    if not path.is_file():
        raise EventFailed(
            ErrorCode.SCRIPT_MISSING,
            f"Script does not exist at specified location: {path}",
            script_name=script.location,
        )
    check_not_modifiable(path, archive, script.location)
    user = hook_user(script)
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            raise EventFailed(
                ErrorCode.SCRIPT_NOT_EXECUTABLE, str(exc), script_name=script.location
            ) from exc
    try:
        process = await asyncio.create_subprocess_exec(
            f"./{path.relative_to(archive)}" if user.switch else str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**user.environment(), **env},
            cwd=archive,  # entered before the user changes: reachable though the root is 0700
            start_new_session=True,
            user=user.uid if user.switch else None,
            group=user.gid if user.switch else None,
            extra_groups=user.groups() if user.switch else None,
        )
    except OSError as exc:
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED,
            f"Script at specified location: {script.location} failed with error {exc}",
            script_name=script.location,
            log_tail=script_log.tail.text(),
        ) from exc
    readers = asyncio.gather(
        _pump(process.stdout, OutputStream.STDOUT, script.location, script_log, live),
        _pump(process.stderr, OutputStream.STDERR, script.location, script_log, live),
    )
    try:
        await asyncio.wait_for(asyncio.gather(process.wait(), readers), script.timeout_seconds)
    except asyncio.CancelledError:  # the deployment was stopped, or the agent is stopping
        await _kill_group(process)
        readers.cancel()
        raise
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
        as_user = f" run as user {user.name}" if script.runas else ""
        raise EventFailed(
            ErrorCode.SCRIPT_FAILED,
            f"Script at specified location: {script.location}{as_user} failed with exit "
            f"code {process.returncode}",
            script_name=script.location,
            log_tail=script_log.tail.text(),
        )


async def _pump(
    stream: asyncio.StreamReader | None,
    name: OutputStream,
    location: str,
    script_log: ScriptLog,
    live: LiveOutput | None,
) -> None:
    assert stream is not None, "stdout and stderr are pipes"
    async for line in lines_of(stream):
        text = line.decode("utf-8", errors="replace")
        script_log.record(f"[{name}]{text}\n", tail=True)
        if live is not None:
            live.line(name, location, text.removesuffix("\r"))


async def lines_of(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The stream's lines, without their line breaks, however long: output without a break
    for `LONGEST_LINE` bytes is a line of its own (StreamReader.readline would raise and lose
    it)."""
    pending = b""
    while chunk := await stream.read(READ_CHUNK):
        *complete, pending = (pending + chunk).split(b"\n")
        for line in complete:
            for start in range(0, max(len(line), 1), LONGEST_LINE):
                yield line[start : start + LONGEST_LINE]
        while len(pending) >= LONGEST_LINE:
            yield pending[:LONGEST_LINE]
            pending = pending[LONGEST_LINE:]
    if pending:
        yield pending


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the script's whole process group; once the script is gone (or the grace has
    passed), SIGKILL whatever of the group is left, so no child outlives a timed-out hook."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
