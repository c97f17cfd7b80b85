"""Respond: alerts → incidents → playbook steps; evidence, postmortems, the audit log."""
