"""A bundle's kind as people write it (`--bundle-type`, CodeDeploy's `bundleType`) and as the
API carries it — one table for the CLI that sends it and the agent that unpacks by it."""

from __future__ import annotations

from deploy.v1 import common_pb2

BUNDLE_TYPES = {
    "zip": common_pb2.BUNDLE_TYPE_ZIP,
    "tar": common_pb2.BUNDLE_TYPE_TAR,
    "tgz": common_pb2.BUNDLE_TYPE_TGZ,
}
BUNDLE_NAMES = {value: name for name, value in BUNDLE_TYPES.items()}
