"""Approval latency: a signed Slack click received → the gated action executed.

    python bench/approval_latency.py [--approvals 200] [--interval-ms 10] [--store-url URL] [--json]

Set-up: an embedded Kafka-protocol broker (Tansu), a store (SQLite in a temporary
directory unless ``--store-url``), a local fake Slack Web API (``tests/fake_slack.py``)
and the real ``serve`` endpoint (:func:`agentwatch.observe.server.make_server` with its approval
worker and a Kafka sender) on loopback. N incidents each get a pending
``quarantine_agent`` approval (quorum 1); once their Slack messages are posted, one
signed ``block_actions`` click per approval is POSTed to ``/slack/interactions``.

Measured per approval, from the store: ``executed_ms − received_ms`` — the server
stamps ``received_ms`` when the request arrives, the executor stamps ``executed_ms``
after the control command was acknowledged by the broker. Reported p50/p90/p99/max;
budget p99 ≤ 1 s. The ``agent.control`` topic is read back to check every command
was published exactly once.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import msgspec
from kafka import KafkaConsumer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fake_slack

from agentwatch.approve.request import ApprovalRequest, request  # noqa: E402
from agentwatch.ingest.topics import ensure_topics  # noqa: E402
from agentwatch.lab.broker import EmbeddedBroker  # noqa: E402
from agentwatch.observe.server import approval_service, make_server  # noqa: E402
from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert  # noqa: E402
from agentwatch.respond.incident_queries import load_incident  # noqa: E402
from agentwatch.store import approvals, open_store  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.test_store import alert  # noqa: E402

BUDGET_P99_MS = 1000
SIGNING_SECRET = "bench-signing-secret"
APPROVER = "UBENCHAPPR"
TOPIC = "agent.control.bench"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def click_body(approval_id: str, n: int, response_url: str) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": APPROVER},
        "trigger_id": f"{n}.bench",
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": "agentwatch_approve",
                "value": approval_id,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def signed_post(url: str, body: bytes) -> int:
    ts = str(int(time.time()))
    signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.status


def wait_until(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def run(n: int, interval_ms: float, store_url: str | None) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="agentwatch-approval-bench-"))
    engine = open_store(store_url or f"sqlite:///{tmp / 'store.db'}")
    with EmbeddedBroker() as broker, FakeSlack(users={APPROVER: "approver@example.com"}) as fake:
        ensure_topics(broker.bootstrap_servers, [TOPIC], partitions=1)
        ids = []
        spec = msgspec.convert(
            {"action": "quarantine_agent", "approvers": [APPROVER], "quorum": 1, "timeout_s": 3600}, ApprovalRequest
        )
        now = int(time.time() * 1000)
        with engine.begin() as conn:
            for i in range(n):
                change = attach_alert(
                    conn, alert(session=f"bench-{i}", agent=f"agent-{i}"), IncidentSettings(), now, now
                )
                record = load_incident(conn, change.incident_id)
                approval_id, _ = request(
                    conn,
                    step_key=f"{change.incident_id}:bench:approve",
                    incident=record,
                    params=spec,
                    subject={"agent": record.agent_id},
                    now=now,
                )
                ids.append(approval_id)
        env = {
            "AGENTWATCH_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "AGENTWATCH_SLACK_BOT_TOKEN": "xoxb-bench",
            "AGENTWATCH_SLACK_CHANNEL": "C0BENCH",
            "AGENTWATCH_SLACK_API_URL": fake.api_url,
        }
        service = approval_service(engine, tmp / "data", TOPIC, broker.bootstrap_servers, environ=env)
        server = make_server("127.0.0.1", 0, engine, service)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/slack/interactions"
        try:

            def all_synced() -> bool:
                with engine.connect() as conn:
                    return all(r.slack_synced_rev == r.slack_rev for r in conn.execute(select(approvals)))

            wait_until(all_synced, 120, "the approval messages to be posted")
            started = time.perf_counter()
            for i, approval_id in enumerate(ids):
                status = signed_post(url, click_body(approval_id, i, fake.response_url(i)))
                assert status == 200, status
                time.sleep(interval_ms / 1000)

            def all_executed() -> bool:
                with engine.connect() as conn:
                    return (
                        conn.execute(select(approvals.c.status).where(approvals.c.status != "executed")).first() is None
                    )

            wait_until(all_executed, 120, "every approved action to execute")
            elapsed = time.perf_counter() - started
            with engine.connect() as conn:
                rows = conn.execute(select(approvals.c.received_ms, approvals.c.executed_ms)).all()
            latencies = [float(r.executed_ms - r.received_ms) for r in rows]
            consumer = KafkaConsumer(
                TOPIC,
                bootstrap_servers=broker.bootstrap_servers,
                group_id=None,
                auto_offset_reset="earliest",
                consumer_timeout_ms=3000,
            )
            commands = [msgspec.json.decode(m.value) for m in consumer]
            consumer.close()
        finally:
            server.shutdown()
            server.server_close()
    published = [c for c in commands if c["type"] == "quarantine_agent"]
    return {
        "approvals": n,
        "interval_ms": interval_ms,
        "store": engine.dialect.name,
        "executed": len(latencies),
        "commands_published": len(published),
        "distinct_commands": len({c["command_id"] for c in published}),
        "p50_ms": percentile(latencies, 0.50),
        "p90_ms": percentile(latencies, 0.90),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "mean_ms": round(statistics.mean(latencies), 1),
        "wall_s": round(elapsed, 2),
        "budget_p99_ms": BUDGET_P99_MS,
        "within_budget": percentile(latencies, 0.99) <= BUDGET_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvals", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=10.0, help="Pause between clicks.")
    parser.add_argument("--store-url", default=None, help="SQLAlchemy URL (default: SQLite in a temp dir).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.approvals, args.interval_ms, args.store_url)
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        table = Table(title="approval received → containment executed (quarantine_agent on Kafka)")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for key, value in result.items():
            table.add_row(key.replace("_", " "), str(value))
        Console().print(table)
    sys.exit(0 if result["within_budget"] and result["distinct_commands"] == result["approvals"] else 1)


if __name__ == "__main__":
    main()
