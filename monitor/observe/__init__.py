"""Observe: Prometheus metrics and the HTTP side (``serve``)."""
