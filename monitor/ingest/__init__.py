"""Ingest: Kafka (``run``) and files (``replay``) into the detection pipeline."""
