# agentwatch image: `agentwatch <command>` (run, serve, simulate, …). Used by compose.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/agentwatch
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY playbooks ./playbooks
RUN pip install ".[postgres]" \
 && useradd --system --uid 10001 --home-dir /var/lib/agentwatch --create-home agentwatch
USER agentwatch
WORKDIR /var/lib/agentwatch
ENTRYPOINT ["agentwatch"]
CMD ["--help"]
