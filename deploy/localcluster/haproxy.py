"""HAProxy for the local cluster: the gRPC front door (HTTP/2 over TLS with a certificate of the
cluster's authority, routed by service path, re-encrypted to each service, whose certificate it
checks) and the web frontend whose backend is the target group `local-web`. That backend starts
empty: the traffic service adds each agent's app through the runtime API when a deployment
allows traffic to it."""

from __future__ import annotations

from collections.abc import Callable

from deploy.localcluster.layout import GRPC_PATHS, SERVICES, ClusterLayout
from deploy.localcluster.packages import find_or_install

WEB_BACKEND = "local-web"


def find_or_install_haproxy(say: Callable[[str], None]) -> str | None:
    """The haproxy binary; installs Debian's package when root on Debian/Ubuntu, saying so."""
    return find_or_install("haproxy", "haproxy", say, sbin=True)


def render_config(layout: ClusterLayout) -> str:
    """haproxy.cfg for this cluster; all listeners on 127.0.0.1."""
    lines = [
        "global",
        f"    stats socket {layout.directory / 'haproxy.sock'} mode 600 level admin",
        f"    pidfile {layout.pids / 'haproxy.pid'}",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 1h",
        "    timeout server 1h",
        "    timeout tunnel 1h",
        "frontend grpc",
        f"    bind 127.0.0.1:{layout.port_base} ssl crt {layout.front_certificate} alpn h2",
    ]
    for service in SERVICES:
        for path in GRPC_PATHS[service]:
            lines.append(f"    use_backend be_{service} if {{ path_beg {path} }}")
    lines.append("    default_backend be_fleet")
    for service in SERVICES:
        lines += [
            f"backend be_{service}",
            f"    server s1 127.0.0.1:{layout.service_port(service)} ssl alpn h2 "
            f"verify required ca-file {layout.ca_file} verifyhost localhost",
        ]
    lines += [
        "frontend web",
        f"    bind 127.0.0.1:{layout.web_port}",
        "    default_backend local-web",
        f"backend {WEB_BACKEND}",
        "    balance roundrobin",
        "    option httpchk GET /",
    ]
    return "\n".join(lines) + "\n"
