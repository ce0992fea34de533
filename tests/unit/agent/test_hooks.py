"""Hook scripts: output tail, exit codes and timeouts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.appspec import Script
from agent.errors import ErrorCode, EventFailed
from agent.hooks import OutputTail, run_scripts


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
