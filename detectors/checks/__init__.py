"""Python checks the shipped rule packs name in their YAML rules (see :mod:`agentwatch.detect.rules.checks`)."""
