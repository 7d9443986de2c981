"""Access control on the broker: SCRAM credentials and least-privilege ACLs derived from the registry."""
