"""Approve: humans decide gated containment (request, vote, execute, expire)."""
