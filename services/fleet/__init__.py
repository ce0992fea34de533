"""Fleet and AgentGateway: instances, tags, health, agent sessions and dispatched commands."""
