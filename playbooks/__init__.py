"""Playbooks: declarative response definitions, actions and templates."""
