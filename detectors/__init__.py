"""Built-in detectors — each a module with a sibling ``.fixture.jsonl``; registered via entry points like any plugin."""
