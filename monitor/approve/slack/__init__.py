"""Slack: one way to reach approvers — messages, the Web API, button clicks."""
