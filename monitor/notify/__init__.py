"""Notifiers: every incident lifecycle change (opened, severity raised, contained, resolved)
delivered to where a SOC looks — Slack, a signed webhook, Alertmanager, OCSF on Kafka or a file.

:mod:`agentwatch.notify.spec` is the plugin contract, :mod:`agentwatch.notify.dispatcher` the
worker that delivers the store's ``incident_changes`` outbox with per-notifier retries.
"""
