"""The deploy CLI: aws deploy's verbs and flags, against an OpenDeploy endpoint."""
