"""Plumbing shared by every service: configuration, database, gRPC bootstrap, errors, metrics."""
