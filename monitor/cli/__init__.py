"""The ``agentwatch`` command line."""
