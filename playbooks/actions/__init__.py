"""Built-in response actions, registered under ``agentwatch.actions`` like any plugin."""
