"""Orchestrator: deployment configs, groups, deployments and the rollout control loop."""
