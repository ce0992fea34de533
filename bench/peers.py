"""Benchmark: the same job through OpenDeploy, pyinfra and Ansible, side by side in one run —
20 hosts on this machine, each getting 10 files copied into a fresh directory and 3 hook
scripts run, a changed file every round (nobody may skip work as unchanged).

- OpenDeploy: 20 deploy-agent processes; `deploy push` + `deploy create-deployment` +
  `deploy wait deployment-successful`, each a CLI process as a user runs them, all counted.
- pyinfra: `pyinfra` over 20 hosts of a connector that runs each locally
  (bench.pyinfra_local; pyinfra's own `@local` stands for one host), `files.sync` and 3
  `server.shell`, all hosts in parallel.
- Ansible: `ansible-playbook` over 20 hosts with `ansible_connection=local`, a `copy` of the
  directory and 3 `command` tasks, 20 forks.

Prints each tool's median and the ratios, with the issue's goals beside them. Needs the bench
extra (`pip install -e '.[bench]'`, which `make bench` does). Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.cluster import BIN, real_fleet
from deploy.lifecycle import LifecycleEvent

HOSTS = 20
FILES = 10
HOOKS = tuple(
    str(event)  # plain names: they are written into the peers' own programs as literals
    for event in (
        LifecycleEvent.BEFORE_INSTALL,
        LifecycleEvent.AFTER_INSTALL,
        LifecycleEvent.APPLICATION_START,
    )
)
GOAL_SECONDS = 1.0
GOAL_PYINFRA = 5.0
GOAL_ANSIBLE = 50.0
REPO = Path(__file__).resolve().parent.parent

PYINFRA_DEPLOY = """\
import os
from pyinfra import host
from pyinfra.operations import files, server

source = os.environ["BENCH_SOURCE"]
files.sync(src=source + "/files", dest=host.data.root)
for hook in {hooks!r}:
    server.shell(commands=["sh " + source + "/scripts/" + hook + ".sh"])
"""

ANSIBLE_PLAY = """\
- hosts: bench
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        src: "{{{{ source }}}}/files/"
        dest: "{{{{ base }}}}/{{{{ inventory_hostname }}}}/"
{commands}
"""


def job(root: Path, round_: int) -> Path:
    """The job's source: 10 files (the first changed every round), 3 hook scripts, and an
    appspec installing the files to /srv/bench/round-N (under each agent's prefix)."""
    (root / "files").mkdir(parents=True)
    (root / "scripts").mkdir()
    for i in range(FILES):
        text = f"round {round_}\n" if i == 0 else f"file {i}\n" * 64
        (root / "files" / f"file-{i}.txt").write_text(text)
    lines = [
        "version: 0.0",
        "os: linux",
        "files:",
        "  - source: files",
        f"    destination: /srv/bench/round-{round_}",
        "hooks:",
    ]
    for hook in HOOKS:
        script = root / "scripts" / f"{hook}.sh"
        script.write_text(f"#!/bin/sh\necho {hook}\n")
        script.chmod(0o755)
        lines += [f"  {hook}:", f"    - location: scripts/{hook}.sh"]
    (root / "appspec.yml").write_text("\n".join(lines) + "\n")
    return root


def installed(targets: list[Path], round_: int) -> None:
    """Every host got every file of this round (else the figure would be of skipped work)."""
    for target in targets:
        files = sorted(p.name for p in target.iterdir()) if target.is_dir() else []
        first = target / "file-0.txt"
        if len(files) != FILES or first.read_text() != f"round {round_}\n":
            raise SystemExit(f"{target}: the job's files are not all there")


def run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def compile_bytecode() -> None:
    """Compile OpenDeploy's modules as installing the package does (pip writes the bytecode of
    what it installs; pyinfra's and Ansible's have theirs): an editable install under
    PYTHONDONTWRITEBYTECODE, as on this project's CI machines, would otherwise compile every
    module again in each CLI process, about 70 ms of each."""
    for package in ("deploy", "services", "agent"):
        compileall.compile_dir(REPO / package, quiet=1)


def opendeploy(workdir: Path, runs: int) -> list[float]:
    compile_bytecode()
    times = []
    with real_fleet(workdir, HOSTS, {"bench": "peers"}, "CodeDeployDefault.AllAtOnce") as (
        running,
        _,
        _,
    ):
        env = {**os.environ, **running.admin.cli_env(running.address)}
        cli = str(BIN / "deploy")
        for round_ in range(runs):
            source = job(workdir / f"opendeploy-{round_}", round_)

            def deploy(source: Path = source) -> None:
                pushed = json.loads(
                    run(
                        [cli, "push", "--application-name", "bench", "--source", str(source)],
                        env,
                        workdir,
                    )
                )
                digest = pushed["revision"]["registryLocation"]["digest"]
                created = json.loads(
                    run(
                        [
                            cli,
                            "create-deployment",
                            "--application-name",
                            "bench",
                            "--deployment-group-name",
                            "all",
                            "--registry-location",
                            f"digest={digest},bundleType=zip",
                        ],
                        env,
                        workdir,
                    )
                )
                deployment = created["deploymentId"]
                run(
                    [cli, "wait", "deployment-successful", "--deployment-id", deployment],
                    env,
                    workdir,
                )

            times.append(timed(deploy))
            hosts = [
                workdir / f"bench-{i}" / "prefix" / "srv" / "bench" / f"round-{round_}"
                for i in range(HOSTS)
            ]
            installed(hosts, round_)
    return times


def pyinfra(workdir: Path, runs: int) -> list[float]:
    times = []
    for round_ in range(runs):
        source = job(workdir / f"pyinfra-{round_}", round_)
        base = workdir / f"pyinfra-hosts-{round_}"
        hosts = [base / f"host-{i}" for i in range(HOSTS)]
        inventory = workdir / "inventory.py"
        inventory.write_text(
            "bench = [\n"
            + "".join(
                f"    ('@benchlocal/host-{i}', {{'root': {str(h)!r}}}),\n"
                for i, h in enumerate(hosts)
            )
            + "]\n"
        )
        deploy = workdir / "deploy.py"
        deploy.write_text(PYINFRA_DEPLOY.format(hooks=HOOKS))
        env = {**os.environ, "BENCH_SOURCE": str(source), "PYTHONPATH": str(REPO)}
        command = [
            str(BIN / "pyinfra"),
            "-y",
            "--parallel",
            str(HOSTS),
            str(inventory),
            str(deploy),
        ]
        times.append(timed(functools.partial(run, command, env, workdir)))
        installed(hosts, round_)
    return times


def ansible(workdir: Path, runs: int) -> list[float]:
    inventory = workdir / "inventory.ini"
    inventory.write_text(
        "[bench]\n"
        + "".join(
            f"host-{i} ansible_connection=local ansible_python_interpreter={BIN / 'python'}\n"
            for i in range(HOSTS)
        )
    )
    commands = "".join(
        f'    - ansible.builtin.command: "sh {{{{ source }}}}/scripts/{hook}.sh"\n'
        for hook in HOOKS
    )
    play = workdir / "play.yml"
    play.write_text(ANSIBLE_PLAY.format(commands=commands.rstrip("\n")))
    env = {
        **os.environ,
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }
    times = []
    for round_ in range(runs):
        source = job(workdir / f"ansible-{round_}", round_)
        base = workdir / f"ansible-hosts-{round_}"
        command = [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            str(play),
            "-f",
            str(HOSTS),
            "-e",
            f"source={source} base={base}",
        ]
        times.append(timed(functools.partial(run, command, env, workdir)))
        installed([base / f"host-{i}" for i in range(HOSTS)], round_)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"the same job on {HOSTS} hosts: copy {FILES} files, run {len(HOOKS)} hooks")
    medians = {}
    for name, tool in (("OpenDeploy", opendeploy), ("pyinfra", pyinfra), ("Ansible", ansible)):
        with tempfile.TemporaryDirectory(prefix="opendeploy-bench-") as tmp:
            times = tool(Path(tmp), args.runs)
        medians[name] = statistics.median(times)
        print(
            f"{name:>10}: median {medians[name]:6.2f} s (min {min(times):.2f}, "
            f"max {max(times):.2f}, runs {len(times)})",
            flush=True,
        )
    ours = medians["OpenDeploy"]
    print(
        f"OpenDeploy {ours:.2f} s (goal ≤ {GOAL_SECONDS:g}); "
        f"pyinfra ÷ OpenDeploy {medians['pyinfra'] / ours:.1f}x (goal ≥ {GOAL_PYINFRA:g}x); "
        f"Ansible ÷ OpenDeploy {medians['Ansible'] / ours:.1f}x (goal ≥ {GOAL_ANSIBLE:g}x)"
    )


if __name__ == "__main__":
    main()
