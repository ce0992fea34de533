"""deploy-server: runs one, several or all OpenDeploy services in one process."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from pathlib import Path

from deploy.logs import setup_logging
from deploy.private import write_private
from services.composition import OpenDeploy
from services.core.config import load_config, parse_services
from services.core.errors import DeployError
from services.core.pki import server_tls
from services.core.server import serve

GC_THRESHOLDS = (10_000, 20, 50)
"""Python's cyclic collector by default runs after every 700 new objects, and every so often
walks every object the process holds. With a thousand agent streams open, a burst of reports
paid pauses of 200 ms for collections that found little (a deployment to 1,000 simulated
agents: 11 s, and 6 to 7 s with these). The server makes few cycles; with these, young
collections run 14 times and full ones over a hundred times less often than by default."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="deploy-server", description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument(
        "--services", help="comma-separated: registry,fleet,orchestrator,traffic,identity"
    )
    parser.add_argument("--listen", help="gRPC host:port (default 127.0.0.1:7400)")
    parser.add_argument("--metrics-listen", help="Prometheus host:port (default 127.0.0.1:0)")
    parser.add_argument("--data-dir", type=Path, help="SQLite files and bundle store")
    parser.add_argument("--database-url", help="SQLAlchemy URL (sqlite:///… or postgresql://…)")
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve and reach peers over TLS (default: on)",
    )
    parser.add_argument(
        "--auth",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every call signed with an access key and allowed by policy (default: on)",
    )
    parser.add_argument("--pki-dir", type=Path, help="the certificate authority (data-dir/pki)")
    parser.add_argument("--log-level", default="INFO")
    commands = parser.add_subparsers(dest="command", metavar="[issue-certificate]")
    issue = commands.add_parser(
        "issue-certificate",
        help="write a server certificate of the cluster's authority (and its key, PEM, 0600) "
        "for a proxy in front of the services, e.g. HAProxy's `crt`",
    )
    issue.add_argument("--address", required=True, help="host:port the proxy answers on")
    issue.add_argument("--out", type=Path, required=True, help="the PEM file to write")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
        if args.services:
            config.services = parse_services(args.services)
        for key in (
            "listen",
            "metrics_listen",
            "data_dir",
            "database_url",
            "tls",
            "auth",
            "pki_dir",
        ):
            if getattr(args, key) is not None:
                setattr(config, key, getattr(args, key))
        config.check()
    except DeployError as error:
        print(f"deploy-server: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.command == "issue-certificate":
        issued = server_tls(config.authority_dir, args.address)
        write_private(args.out, issued.certificate + issued.key)
        print(f"wrote {args.out}; clients trust {issued.ca_path}")
        return
    gc.set_threshold(*GC_THRESHOLDS)
    with asyncio.Runner() as runner:
        if not runner.run(serve(config, OpenDeploy())):
            # Tasks that would not end in the grace must not hold the process (the runner's
            # close would wait for them): exit now, as a kill would — every state change is
            # committed, and the next start resumes the rest.
            logging.shutdown()
            os._exit(0)


if __name__ == "__main__":
    main()
