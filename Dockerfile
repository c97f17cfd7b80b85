# agentwatch image: `agentwatch <command>` (run, serve, …). Used by compose.yaml.
# Two targets: `runtime` (the default, last stage) without the lab; `lab` adds the simulator,
# demo, embedded broker, reference gateway and evaluation (`agentwatch[lab]`) for
# compose's `--profile demo`.
FROM python:3.11-slim AS source

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/agentwatch
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY detectors ./detectors
COPY playbooks ./playbooks
RUN useradd --system --uid 10001 --home-dir /var/lib/agentwatch --create-home agentwatch

FROM source AS lab
RUN pip install ".[postgres,lab]"
USER agentwatch
WORKDIR /var/lib/agentwatch
ENTRYPOINT ["agentwatch"]
CMD ["--help"]

FROM source AS runtime
# The lab's code is in the wheel (pure Python, nothing imports it at run time); the runtime
# image drops it along with its extra, so the production image carries no simulator or broker.
RUN pip install ".[postgres]" \
 && python -c "import pathlib, shutil, agentwatch.lab as lab; shutil.rmtree(pathlib.Path(lab.__file__).parent)" \
 && agentwatch --version
USER agentwatch
WORKDIR /var/lib/agentwatch
ENTRYPOINT ["agentwatch"]
CMD ["--help"]
