"""OpenDeploy's public face: the generated deploy.v1 API, the client SDK and the CLI."""
