"""OpenDeploy's services: registry, fleet, orchestrator, traffic, and their shared core."""
