"""The measurements behind ``bench/run_bench.py``, each on one topic of one broker.

Every function returns plain numbers (JSON-ready dicts); budgets and met/missed are
``run_bench``'s business. Clocks: throughput from the first record to the last batch
(group-join time excluded); latency from producers' record timestamps on this machine;
the responder backlog from the store's ``actions`` rows (``finished_ms``, wall clock).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from kafka import KafkaConsumer
from sqlalchemy import create_engine, func, select, text

from agentwatch.config import Config, MonitorSettings, ResponseSettings, WorkerMode
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.ingest.kafka_runner import GROUP_TIMEOUTS, RunStats
from agentwatch.ingest.kafka_security import KafkaSecurity, client_kwargs
from agentwatch.ingest.monitor_process import start_monitor
from agentwatch.ingest.replay import replay_file
from agentwatch.ingest.topics import ensure_topics
from agentwatch.lab.topic_io import publish_events, read_records
from agentwatch.store import actions

BENCH_DIR = Path(__file__).resolve().parent
#: Steps still to run: the responder's backlog.
UNFINISHED = ("pending", "running")


def bench_config(name: str, data_dir: Path, store_url: str | None = None, worker: WorkerMode = "inline") -> Config:
    """Topics, group and data directory of their own for ``name`` (``store_url``: default SQLite there);
    ``worker``: ``[response] worker``."""
    return Config(
        response=ResponseSettings(worker=worker),
        monitor=MonitorSettings(
            data_dir=str(data_dir / name),
            store_url=store_url,
            group_id=f"bench-{name}",
            inputs={f"bench.{name}": "native"},
            alerts_topic=f"bench.{name}.alerts",
            dlq_topic=f"bench.{name}.dlq",
            control_topic=f"bench.{name}.control",
        ),
    )


@contextmanager
def throwaway_postgres(admin_url: str, name: str) -> Iterator[str]:
    """A fresh PostgreSQL database ``name`` on ``admin_url``'s server; dropped on exit."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


def bare_consumer_rate(
    bootstrap: str, topic: str, expected: int, group_id: str = "bench-bare", security: KafkaSecurity | None = None
) -> float:
    """A bare kafka-python consumer (poll, count, commit per batch): events/s from its first record."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        **GROUP_TIMEOUTS,
        **client_kwargs(security),
    )
    seen = 0
    first = None
    try:
        while seen < expected:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                continue
            if first is None:
                first = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
            consumer.commit()
        assert first is not None
        return seen / (time.perf_counter() - first)
    finally:
        consumer.close()


def monitor_run(bootstrap: str, config: Config, expected: int, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """``run``'s loop (in this process, responder on as configured) over ``expected`` events.

    Stopped after the batch that reaches ``expected``; stopping drains the responder
    (``Responder.stop``), so the store then holds every step it got to: the backlog's
    tail is the last step's finish time minus the last batch's.
    """
    monitor = start_monitor(bootstrap, config, exit_on_idle_s=3.0, security=security)
    marks: dict[str, float] = {}

    def on_batch(stats: RunStats) -> None:
        if stats.events >= expected:
            marks["last"] = time.perf_counter()
            marks["last_wall_ms"] = time.time() * 1000
            monitor.stop_event.set()

    # The clock starts when the first batch *arrives*, not when it finishes.
    original = monitor.pipeline.ingest

    def timed_ingest(*args, **kwargs):  # type: ignore[no-untyped-def]
        marks.setdefault("first", time.perf_counter())
        return original(*args, **kwargs)

    monitor.pipeline.ingest = timed_ingest  # type: ignore[method-assign]
    monitor.on_batch = on_batch
    stats = monitor.run()
    stopped = time.perf_counter()
    if "last" not in marks:
        raise RuntimeError(f"run stopped after {stats.events} of {expected} events")
    return {
        "run_events_per_s": stats.events / (marks["last"] - marks["first"]),
        "events": stats.events,
        "alerts": stats.alerts_published,
        "stop_s": round(stopped - marks["last"], 3),
        "backlog": responder_backlog(config.store_url, int(marks["last_wall_ms"])),
    }


def monitor_rate(
    bootstrap: str, config: Config, expected: int, security: KafkaSecurity | None = None
) -> tuple[float, int]:
    """``run``'s events/s and alerts published (see :func:`monitor_run`)."""
    result = monitor_run(bootstrap, config, expected, security)
    return result["run_events_per_s"], result["alerts"]


def responder_backlog(store_url: str, last_event_ms: int) -> dict[str, Any]:
    """The responder's steps as the store has them, and how long after ``last_event_ms`` the last finished.

    ``tail_ms`` is 0 when every step finished before the last event; ``left`` counts
    steps still pending or running (a backlog never drained).
    """
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(actions.c.status, func.count(), func.max(actions.c.finished_ms)).group_by(actions.c.status)
            ).all()
    finally:
        engine.dispose()
    by_status = {status: count for status, count, _ in rows}
    last_finished = max((finished for _, _, finished in rows if finished is not None), default=None)
    return {
        "steps": sum(by_status.values()),
        "by_status": by_status,
        "left": sum(by_status.get(s, 0) for s in UNFINISHED),
        "tail_ms": max(0, last_finished - last_event_ms) if last_finished is not None else 0,
    }


def replay_rates(events: list[dict[str, Any]], config: Config) -> dict[str, Any]:
    """``replay`` over ``events`` written to a file, beside a bare ``json.loads`` loop over the same file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in events))
        stats = replay_file(path, io.BytesIO(), build_pipeline(config))
        started = time.perf_counter()
        decoded = 0
        with open(path, "rb") as source:
            for line in source:
                json.loads(line)
                decoded += 1
        bare_s = time.perf_counter() - started
    return {
        "events_per_s": stats.events / stats.seconds,
        "events": stats.events,
        "alerts": stats.alerts,
        "json_loads_events_per_s": decoded / bare_s,
    }


def latency(
    bootstrap: str,
    config: Config,
    events: list[dict[str, Any]],
    rate: float,
    workdir: Path,
    join_wait_s: float = 6.0,
    security: KafkaSecurity | None = None,
) -> dict[str, Any]:
    """Produce at ``rate`` while `agentwatch run` (its own process, as users run it) consumes.

    For every alert: its record time minus its triggering event's. For every
    terminate_session command: its record time minus that of the event that raised the
    session's first enforce-mode alert at high or above. The responder's backlog: its
    last step's finish time minus the last event's record time.
    """
    topic = next(iter(config.monitor.inputs))
    config_path = workdir / f"{config.monitor.group_id}.toml"
    inputs = "\n".join(f'"{t}" = "{f}"' for t, f in config.monitor.inputs.items())
    store = f'store_url = "{config.monitor.store_url}"\n' if config.monitor.store_url else ""
    config_path.write_text(
        f'[monitor]\ndata_dir = "{config.monitor.data_dir}"\n{store}group_id = "{config.monitor.group_id}"\n'
        f'alerts_topic = "{config.monitor.alerts_topic}"\ndlq_topic = "{config.monitor.dlq_topic}"\n'
        f'control_topic = "{config.monitor.control_topic}"\n[monitor.inputs]\n{inputs}\n'
        f'[response]\nworker = "{config.response.worker}"\n'
    )
    ensure_topics(
        bootstrap,
        [config.monitor.alerts_topic, config.monitor.dlq_topic, config.monitor.control_topic],
        security=security,
    )
    monitor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentwatch.cli",
            "--config",
            str(config_path),
            "run",
            "--bootstrap-servers",
            bootstrap,
            "--quiet",
            "--exit-on-idle",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(join_wait_s)  # consumer group join (no records yet, so the idle clock has not started)
    # Event time ends now, so incident and containment clocks read naturally.
    shift = int(time.time() * 1000) - max(e["ts"] for e in events)
    publish_events(bootstrap, topic, [{**e, "ts": e["ts"] + shift} for e in events], rate=rate, security=security)
    _, stderr = monitor.communicate(timeout=600)
    if monitor.returncode != 0:
        raise RuntimeError(f"agentwatch run failed: {stderr.decode()[-2000:]}")
    produced = _timestamps(bootstrap, topic, key="event_id", security=security)
    alerts = _records(bootstrap, config.monitor.alerts_topic, security)
    to_alert = sorted(t - produced[a["event_id"]] for t, a in alerts if a["event_id"] in produced)
    trigger: dict[str, tuple[int, str]] = {}
    for t, a in alerts:
        if a["mode"] == "enforce" and a["severity"] in ("high", "critical") and a["event_id"] in produced:
            if a["session_id"] not in trigger or t < trigger[a["session_id"]][0]:
                trigger[a["session_id"]] = (t, a["event_id"])
    to_terminate = sorted(
        t - produced[trigger[c["session_id"]][1]]
        for t, c in _records(bootstrap, config.monitor.control_topic, security)
        if c["type"] == "terminate_session" and c["session_id"] in trigger
    )
    return {
        "rate": rate,
        "events": len(produced),
        "event_to_alert_ms": percentiles(to_alert),
        "event_to_terminate_ms": percentiles(to_terminate),
        "backlog": responder_backlog(config.store_url, max(produced.values())),
    }


def idle_session_memory(sessions: int, timeout_s: float = 900.0) -> dict[str, Any]:
    """``bench/session_memory.py --sessions N --agents 0 --json`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "session_memory.py"), "--sessions", str(sessions), "--agents", "0", "--json"],
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"session_memory.py failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = msgspec.json.decode(done.stdout.strip().splitlines()[-1])
    return result


def percentiles(values: list[int]) -> dict[str, float]:
    """n, p50, p99 and max of ``values`` (sorted ascending); ``{"n": 0}`` when empty."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": values[len(values) // 2],
        "p99": values[min(len(values) - 1, int(len(values) * 0.99))],
        "max": values[-1],
    }


def _records(bootstrap: str, topic: str, security: KafkaSecurity | None = None) -> list[tuple[int, dict[str, Any]]]:
    return [
        (r.timestamp, msgspec.json.decode(r.value))
        for r in read_records(bootstrap, topic, timeout_s=60, security=security)
    ]


def _timestamps(bootstrap: str, topic: str, key: str, security: KafkaSecurity | None = None) -> dict[str, int]:
    return {value[key]: ts for ts, value in _records(bootstrap, topic, security)}


def cpu_note() -> str:
    """CPUs and the 1-minute load average when the run started: the machine may be shared."""
    return f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"


__all__ = [
    "bare_consumer_rate",
    "bench_config",
    "idle_session_memory",
    "latency",
    "monitor_rate",
    "monitor_run",
    "percentiles",
    "replay_rates",
    "responder_backlog",
    "throwaway_postgres",
]
