"""Identity: users, access keys, policies and the audit log."""
