"""Jinja2 templates of the built-in playbooks (package data: the postmortem draft)."""
