"""python -m deploy.localcluster up|down|demo|provision — the local cluster of DESIGN §3."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deploy.errors import ClientError
from deploy.localcluster.cluster import down, provision, up
from deploy.localcluster.demo import demo
from deploy.localcluster.layout import ClusterLayout


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.localcluster")
    parser.add_argument("action", choices=["up", "down", "demo", "provision"])
    parser.add_argument("--dir", default=os.environ.get("CLUSTER_DIR", ".cluster"))
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("PORT_BASE", "7400")))
    parser.add_argument("--agents", type=int, default=int(os.environ.get("AGENTS", "3")))
    args = parser.parse_args()
    layout = ClusterLayout(Path(args.dir).resolve(), args.port_base, args.agents)
    try:
        {"up": up, "down": down, "demo": demo, "provision": provision}[args.action](layout)
    except (ClientError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
