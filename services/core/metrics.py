"""Prometheus metrics of the services (prefix opendeploy_, DESIGN §6; docs/monitoring.md).
Label sets stay bounded: services, methods, codes, statuses, event names, load balancers and
instances — never deployment ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

GRPC_HANDLED = Counter(
    "opendeploy_grpc_server_handled_total",
    "RPCs completed by the server, by service, method and status code.",
    ["service", "method", "code"],
)
GRPC_SECONDS = Histogram(
    "opendeploy_grpc_server_handling_seconds",
    "Time to handle an RPC (streams: until the stream closes).",
    ["service", "method"],
)
DEPLOYMENTS_TOTAL = Counter(
    "opendeploy_deployments_total", "Deployments that reached a terminal status.", ["status"]
)
DEPLOYMENTS_IN_PROGRESS = Gauge(
    "opendeploy_deployments_in_progress", "Deployments currently in progress."
)
LIFECYCLE_EVENT_SECONDS = Histogram(
    "opendeploy_lifecycle_event_duration_seconds",
    "Duration of lifecycle events on instances, from dispatch to result.",
    ["event", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
AGENTS_CONNECTED = Gauge("opendeploy_agents_connected", "Agents with an open stream.")
AGENT_HEARTBEAT_AGE = Gauge(
    "opendeploy_agent_heartbeat_age_seconds",
    "Seconds since the oldest connected agent's last heartbeat.",
)
TRIGGER_DELIVERIES = Counter(
    "opendeploy_trigger_deliveries_total",
    "Trigger (webhook) delivery attempts by resulting status: Delivered, Pending (will retry), "
    "Failed (gave up).",
    ["status"],
)
INSTANCES = Gauge("opendeploy_instances", "Registered instances by health.", ["health"])
COMMANDS_IN_FLIGHT = Gauge(
    "opendeploy_commands_in_flight",
    "Lifecycle commands dispatched to agents and not finished: Pending (not started by the "
    "agent yet) or InProgress.",
    ["state"],
)
TRAFFIC_WEIGHT = Gauge(
    "opendeploy_traffic_weight", "Traffic weight per target.", ["load_balancer", "target"]
)
BUNDLE_BYTES = Counter(
    "opendeploy_bundle_bytes_total", "Bundle bytes moved, by direction (in, out).", ["direction"]
)
