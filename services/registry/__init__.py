"""RevisionRegistry: applications, revisions and the content-addressed bundle store."""
