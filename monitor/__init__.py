"""agentwatch's runtime: events, formats, Kafka I/O, the pipeline, session state, CLI."""

__version__ = "0.1.0"
