"""deploy-agent: hold the stream to the fleet (--config), or run a bundle locally (local,
validate)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import grpc

from agent.config import load_agent_config
from agent.errors import ConfigError
from agent.identity import Identity
from agent.local import add_commands
from agent.session import AgentSession, channel
from deploy.logs import setup_logging
from deploy.metricsserver import serve_metrics


async def _serve(config_path: Path) -> None:
    config = load_agent_config(config_path)
    if config.metrics_listen:
        serve_metrics(config.metrics_listen)
    session = AgentSession(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(session.run_forever())
    await stop.wait()
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    await session.close()


async def _enrol(config_path: Path, token: str) -> str:
    config = load_agent_config(config_path)
    identity = Identity(config.identity_dir)
    async with channel(config, identity) as connection:
        name = await identity.enrol(connection, token, config.instance_name)
    return f"enrolled as {name}; certificate valid until {identity.expires().isoformat()}"


def _enrol_command(args: argparse.Namespace) -> int:
    """`deploy-agent enroll`: spend a join token on this host's certificate."""
    try:
        print(asyncio.run(_enrol(args.config, args.token)))
    except ConfigError as error:
        print(f"deploy-agent: {error}", file=sys.stderr)
        return 2
    except grpc.RpcError as error:
        print(
            f"deploy-agent: enrolment refused ({error.code().name}): {error.details()}",
            file=sys.stderr,
        )
        return 1
    return 0


AGENT_UMASK = 0o022
"""What the agent creates (unpacked directories, installed directories) is never group- or
world-writable unless an appspec's permissions say so; hooks start with it too."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deploy-agent", description=__doc__)
    parser.add_argument("--config", type=Path, help="agent.yaml: run the agent")
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command")
    add_commands(commands)
    enrol = commands.add_parser("enroll", help="spend a join token on this host's certificate")
    enrol.add_argument("--config", type=Path, required=True, help="agent.yaml")
    enrol.add_argument("--token", required=True, help="from register-on-premises-instance")
    enrol.set_defaults(run=_enrol_command)
    args = parser.parse_args(argv)
    setup_logging(args.log_level if args.command is None else "ERROR")
    os.umask(AGENT_UMASK)
    if args.command is not None:
        raise SystemExit(args.run(args))
    if args.config is None:
        parser.error("--config is required to run the agent (or use: local, validate)")
    try:
        asyncio.run(_serve(args.config))
    except ConfigError as error:
        print(f"deploy-agent: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
