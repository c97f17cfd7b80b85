"""The lab (``pip install 'agentwatch[lab]'``): simulator, demo, embedded broker, reference gateway, evaluation."""
