"""Example third-party agentwatch detector package (see docs/writing-a-detector.md)."""
