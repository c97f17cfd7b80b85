"""Detect: the detector contract and registry, session state, the pipeline, policy, alerts."""
