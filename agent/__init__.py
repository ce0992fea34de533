"""deploy-agent: holds a stream to the fleet and runs lifecycle events on its host."""
