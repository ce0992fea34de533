"""The deploy CLI: aws deploy's verbs and flags, against an OpenDeploy endpoint."""

import os

# gRPC's core logs a failed TLS handshake to stderr at its default verbosity; the CLI reports
# every failure itself in one line, so the core only speaks up for its own errors.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
