"""Hook scripts: output tail, exit codes and timeouts."""

from __future__ import annotations

import asyncio
import os
import pwd
import time
from pathlib import Path

import pytest

from agent.appspec import Script
from agent.download import LocalSource
from agent.errors import ErrorCode, EventFailed
from agent.hooks import LONGEST_LINE, OutputTail, lines_of, run_scripts
from agent.output import LiveOutput
from agent.spec import DeploymentSpec
from deploy.hookoutput import OutputLine, OutputStream
from tests.processes import wait_until


def test_tail_keeps_newest_whole_entries_within_2048_characters() -> None:
    tail = OutputTail()
    for i in range(300):
        tail.add(f"[stdout]{i:03d}" + "x" * 96 + "\n")  # 108 characters each
    text = tail.text()
    assert len(text) == 18 * 108
    assert text.endswith("[stdout]299" + "x" * 96 + "\n")


def script(archive: Path, name: str, body: str) -> Script:
    path = archive / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return Script(name, timeout_seconds=2)


async def test_failing_script_reports_exit_code_and_output(tmp_path: Path) -> None:
    hook = script(tmp_path, "fail.sh", "echo out; echo err >&2; exit 7\n")
    with pytest.raises(EventFailed) as error:
        await run_scripts(
            "ValidateService", (hook,), tmp_path, dict(os.environ), tmp_path / "logs/scripts.log"
        )
    assert error.value.code is ErrorCode.SCRIPT_FAILED
    assert error.value.script_name == "fail.sh"
    assert "exit code 7" in error.value.message
    assert "[stdout]out\n" in error.value.log_tail
    assert "[stderr]err\n" in error.value.log_tail
    assert "LifecycleEvent - ValidateService" in (tmp_path / "logs/scripts.log").read_text()


async def test_script_over_its_timeout_is_killed_with_its_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    hook = script(tmp_path, "slow.sh", f"(sleep 4; touch {marker}) &\nsleep 30\n")
    hook = Script(hook.location, timeout_seconds=1)
    with pytest.raises(EventFailed) as error:
        await run_scripts(
            "ApplicationStart", (hook,), tmp_path, dict(os.environ), tmp_path / "scripts.log"
        )
    assert error.value.code is ErrorCode.SCRIPT_TIMED_OUT
    assert not marker.exists()


async def test_environment_reaches_the_script(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    hook = script(tmp_path, "env.sh", f'echo "$LIFECYCLE_EVENT $APP_PORT" > {out}\n')
    env = {**os.environ, "LIFECYCLE_EVENT": "AfterInstall", "APP_PORT": "8080"}
    await run_scripts("AfterInstall", (hook,), tmp_path, env, tmp_path / "scripts.log")
    assert out.read_text() == "AfterInstall 8080\n"


async def test_runas_switches_user_as_root_and_is_refused_clearly_otherwise() -> None:
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="runas-", dir="/tmp"))
    try:
        directory.chmod(0o755)
        hook = script(directory, "who.sh", 'test "$(id -un)" = nobody\n')
        hook = Script(hook.location, timeout_seconds=10, runas="nobody")
        if os.geteuid() != 0:
            with pytest.raises(EventFailed, match="runas 'nobody' needs the agent to run as root"):
                await run_scripts(
                    "BeforeInstall", (hook,), directory, dict(os.environ), directory / "scripts.log"
                )
            return
        await run_scripts(
            "BeforeInstall", (hook,), directory, dict(os.environ), directory / "scripts.log"
        )
    finally:
        shutil.rmtree(directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


async def test_a_runas_hook_is_killed_with_its_children_at_its_timeout_and_sees_no_agent_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started as the user directly (no su, so no new session): the timeout's group kill takes
    the background child too. The hook's environment is built, not inherited."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true needs root: runas switches user")
        pytest.skip("runas needs the agent to run as root")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "agent-only-secret")
    archive = tmp_path / "root" / "archive"  # under a 0700 directory, as on a host
    archive.mkdir(parents=True)
    (tmp_path / "root").chmod(0o700)
    out = archive / "out"  # reachable only from the hook's working directory
    out.mkdir()
    out.chmod(0o777)
    script(
        archive,
        "hang.sh",
        "env > out/env\nid -un > out/user\nsleep 300 &\necho $! > out/child\nsleep 300\n",
    )
    hook = Script("hang.sh", timeout_seconds=1, runas="nobody")
    with pytest.raises(EventFailed) as error:
        await run_scripts(
            "ApplicationStart", (hook,), archive, {"APP_PORT": "8080"}, tmp_path / "log"
        )
    assert error.value.code is ErrorCode.SCRIPT_TIMED_OUT
    child = int((out / "child").read_text())
    # killed with its group; the kernel may take a moment to finish it off
    wait_until(lambda: not _alive(child), 5, "the hook's background child to be gone")
    assert (out / "user").read_text().strip() == "nobody"
    env = dict(line.split("=", 1) for line in (out / "env").read_text().splitlines() if "=" in line)
    assert not [name for name in env if name.startswith("AWS_")]
    assert env["APP_PORT"] == "8080"
    assert env["USER"] == "nobody"
    assert env["HOME"] == pwd.getpwnam("nobody").pw_dir


async def test_a_hook_failure_as_another_user_names_the_user(tmp_path: Path) -> None:
    script(tmp_path, "fail.sh", "exit 3\n")
    runas = Script("fail.sh", timeout_seconds=2, runas="no-such-user-here")
    with pytest.raises(EventFailed) as error:
        await run_scripts("AfterInstall", (runas,), tmp_path, {}, tmp_path / "log")
    assert "run as user no-such-user-here failed" in error.value.message


@pytest.mark.parametrize("mode", [0o775, 0o757])
async def test_a_script_others_could_modify_is_refused(tmp_path: Path, mode: int) -> None:
    marker = tmp_path / "ran"
    hook = script(tmp_path, "start.sh", f"touch {marker}\n")
    (tmp_path / "start.sh").chmod(mode)
    with pytest.raises(EventFailed) as error:
        await run_scripts("ApplicationStart", (hook,), tmp_path, {}, tmp_path / "log")
    assert "can be modified by other users" in error.value.message
    assert not marker.exists()


async def test_a_script_in_a_world_writable_directory_is_refused(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    scripts.chmod(0o777)
    marker = tmp_path / "ran"
    hook = script(tmp_path, "scripts/start.sh", f"touch {marker}\n")
    with pytest.raises(EventFailed) as error:
        await run_scripts("ApplicationStart", (hook,), tmp_path, {}, tmp_path / "log")
    assert str(scripts) in error.value.message
    assert not marker.exists()


async def test_a_directory_bundle_from_a_group_writable_tree_is_copied_safe(
    tmp_path: Path,
) -> None:
    """`deploy-agent local` of a developer's tree (umask 002): the copy the agent runs from is
    capped like an archive, so its scripts run."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "scripts").chmod(0o775)
    marker = tmp_path / "ran"
    hook = script(tree, "scripts/start.sh", f"touch {marker}\n")
    (tree / "scripts/start.sh").chmod(0o775)
    archive = tmp_path / "archive"
    await LocalSource(tree, "directory").materialize(
        DeploymentSpec("d-1", "a", "g", "g"), tmp_path / "bundle", archive
    )
    await run_scripts("ApplicationStart", (hook,), archive, {}, tmp_path / "log")
    assert marker.exists()


def running(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def test_a_cancelled_hook_is_killed_with_its_children(tmp_path: Path) -> None:
    """A stopped deployment cancels the event: the hook's whole process group goes."""
    child = tmp_path / "child.pid"
    hook = script(tmp_path, "long.sh", f"sleep 300 &\necho $! > {child}\nwait\n")
    hook = Script(hook.location, timeout_seconds=600)
    task = asyncio.create_task(
        run_scripts("ApplicationStart", (hook,), tmp_path, {}, tmp_path / "scripts.log")
    )
    deadline = time.monotonic() + 10
    while not (child.exists() and child.read_text().strip()):
        assert time.monotonic() < deadline, "the hook never started its child"
        await asyncio.sleep(0.05)
    pid = int(child.read_text())
    assert running(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline = time.monotonic() + 5
    while running(pid):
        assert time.monotonic() < deadline, "the hook's child outlived the cancel"
        await asyncio.sleep(0.05)


async def test_lines_of_splits_output_of_any_length_into_lines() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"one\ntwo\r\n" + b"x" * (LONGEST_LINE + 10) + b"\nlast")
    reader.feed_eof()
    lines = [line async for line in lines_of(reader)]
    assert lines == [b"one", b"two\r", b"x" * LONGEST_LINE, b"x" * 10, b"last"]


async def test_a_hook_writing_a_line_longer_than_the_reader_limit_succeeds(
    tmp_path: Path,
) -> None:
    hook = script(tmp_path, "long.sh", "head -c 200000 /dev/zero | tr '\\0' x\necho\necho done\n")
    log = tmp_path / "logs/scripts.log"
    await run_scripts("AfterInstall", (hook,), tmp_path, dict(os.environ), log)
    text = log.read_text()
    assert text.count("x") == 200000
    assert "[stdout]done\n" in text


async def test_hook_output_lines_go_to_the_live_output_with_their_stream_and_script(
    tmp_path: Path,
) -> None:
    sent: list[list[OutputLine]] = []
    live = LiveOutput(sent.append)
    hook = script(tmp_path, "talk.sh", "echo out\necho err >&2\n")
    log = tmp_path / "logs/scripts.log"
    await run_scripts("AfterInstall", (hook,), tmp_path, dict(os.environ), log, live)
    live.close()
    lines = {(line.stream, line.script, line.text) for batch in sent for line in batch}
    assert lines == {
        (OutputStream.STDOUT, "talk.sh", "out"),
        (OutputStream.STDERR, "talk.sh", "err"),
    }
