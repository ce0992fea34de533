"""The agent's Prometheus metrics (opendeploy_agent_*), served on `metrics_listen` when the
configuration sets it. Labels are lifecycle event names and results only."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "opendeploy_agent_events_total",
    "Lifecycle events this agent ran, by event and result (Succeeded, Failed).",
    ["event", "result"],
)
HOOK_SECONDS = Histogram(
    "opendeploy_agent_hook_duration_seconds",
    "How long each hook script ran, by lifecycle event.",
    ["event"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
DOWNLOAD_BYTES = Counter(
    "opendeploy_agent_bundle_download_bytes_total", "Bundle bytes downloaded (cache misses)."
)
DOWNLOAD_SECONDS = Histogram(
    "opendeploy_agent_bundle_download_seconds",
    "How long fetching a bundle took (registry, S3 or Git; cache misses).",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600),
)
CACHE_HITS = Counter(
    "opendeploy_agent_bundle_cache_hits_total", "Bundles taken from this host's cache."
)
STREAM_CONNECTED = Gauge(
    "opendeploy_agent_stream_connected", "1 while the stream to the fleet is open (welcomed)."
)
RECONNECTS = Counter(
    "opendeploy_agent_stream_reconnects_total", "Times the stream to the fleet was opened again."
)
LAST_HEARTBEAT = Gauge(
    "opendeploy_agent_last_heartbeat_timestamp_seconds",
    "Unix time of the last heartbeat sent to the fleet.",
)
