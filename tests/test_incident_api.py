"""``GET /v1/incidents`` and ``/v1/incidents/<id>`` on a real ``serve`` (issue 15): authenticated,
paginated without repeats or gaps, filtered, redacted; Slack links to it instead of file paths."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentwatch.approve.slack.messages import details_text, incident_message, incident_view
from agentwatch.detect.alerts import Alert, alert_id_for
from agentwatch.observe.server import AgentwatchServer, ServeLimits, make_server
from agentwatch.respond.incident_lifecycle import IncidentSettings, attach_alert, set_status
from agentwatch.respond.incident_queries import load_incident
from agentwatch.respond.incident_record import ActionRecord
from agentwatch.store import open_store

TOKEN = "incident-api-token-7d1e4f9c2a"
SECRET = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"  # a GitHub token shape an agent put in its id
LIMITS = ServeLimits(request_timeout_s=2.0, keep_alive_s=1, worker_threads=4)
T0 = 1_767_225_600_000


def _alert(n: int, severity: str) -> Alert:
    session = f"sess-{n:03d}"
    return Alert(
        alert_id=alert_id_for("secret_access", session),
        revision=1,
        session_id=session,
        agent_id=f"agent-{SECRET}" if n == 7 else f"agent-{n % 5}",
        principal="ana@example.com",
        detector="secret_access",
        category="secret_access",
        severity=severity,
        score=0.8,
        mode="enforce",
        event_id=f"{session}:e1",
        ts="2026-01-01T00:00:00.000Z",
        summary="read ~/.ssh/id_rsa",
        reasons=["read ~/.ssh/id_rsa"],
        event_ids=[f"{session}:e1"],
        finding_count=1,
        first_ts_ms=T0 + n,
        updated_ts_ms=T0 + n,
        observed_ms=T0 + n,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, object, dict[int, str]]]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    ids: dict[int, str] = {}
    with engine.begin() as conn:
        for n in range(75):
            severity = "critical" if n % 3 == 0 else "high"
            # ten incidents share one opening millisecond: the cursor must order ties by id
            now = T0 + 1000 * (n if n >= 10 else 0)
            change = attach_alert(conn, _alert(n, severity), IncidentSettings(), now, T0 + n)
            ids[n] = change.incident_id
            if n % 4 == 0:
                set_status(conn, change.incident_id, "contained", "agentwatch", now + 5, "terminated")
    server: AgentwatchServer = make_server("127.0.0.1", 0, engine, token=TOKEN, limits=LIMITS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.uvicorn.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", engine, ids
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()


def get(url: str, token: str | None = TOKEN) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_incident_routes_need_the_token(served) -> None:  # type: ignore[no-untyped-def]
    url, _, ids = served
    for path in ("/v1/incidents", f"/v1/incidents/{ids[1]}"):
        for token in (None, "wrong-token-wrong-token"):
            status, body = get(url + path, token)
            assert status == 401 and body["error"] == "unauthorized"


def test_pages_cover_every_incident_once_newest_first(served) -> None:  # type: ignore[no-untyped-def]
    url, _, ids = served
    seen: list[str] = []
    opened: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": "20"} | ({"cursor": cursor} if cursor else {})
        status, page = get(f"{url}/v1/incidents?{urllib.parse.urlencode(query)}")
        assert status == 200 and page["total"] == 75
        seen += [item["incident_id"] for item in page["incidents"]]
        opened += [item["opened_ms"] for item in page["incidents"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and len(seen) == 75 and set(seen) == set(ids.values())
    assert opened == sorted(opened, reverse=True)
    first = get(f"{url}/v1/incidents")[1]
    assert first["count"] == 50 and first["next_cursor"] is not None  # the default page
    item = first["incidents"][0]
    assert item["url"] == f"/v1/incidents/{item['incident_id']}" and item["opened"].endswith("Z")
    assert {"severity", "status", "alerts", "open_steps", "pending_approvals", "title"} <= set(item)


def test_filters_and_the_total_they_match(served) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = served
    status, page = get(f"{url}/v1/incidents?status=contained&severity=critical&limit=200")
    expected = sum(1 for n in range(75) if n % 4 == 0 and n % 3 == 0)
    assert status == 200 and page["total"] == expected == page["count"]
    assert {(i["status"], i["severity"]) for i in page["incidents"]} == {("contained", "critical")}


@pytest.mark.parametrize(
    ("query", "complaint"),
    [
        ("limit=0", "limit must be"),
        ("limit=201", "limit must be"),
        ("limit=ten", "limit must be"),
        ("status=gone", "status must be"),
        ("severity=urgent", "severity must be"),
        ("cursor=%21%21not-base64", "malformed cursor"),
        ("cursor=" + "A" * 500, "cursor too long"),
        ("order=asc", "unknown parameter"),
    ],
)
def test_bad_queries_are_one_line_400s(served, query: str, complaint: str) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = served
    status, body = get(f"{url}/v1/incidents?{query}")
    assert status == 400 and complaint in body["error"] and "\n" not in body["error"]


def test_one_incident_whole_and_redacted(served) -> None:  # type: ignore[no-untyped-def]
    url, _, ids = served
    status, body = get(f"{url}/v1/incidents/{ids[7]}")
    assert status == 200
    assert body["incident_id"] == ids[7] and body["alerts"][0]["detector"] == "secret_access"
    assert {"events", "actions", "timeline", "approvals"} <= set(body)
    assert SECRET not in json.dumps(body) and "[REDACTED:github_token]" in body["agent_id"]
    listed = get(f"{url}/v1/incidents?limit=200")[1]
    assert SECRET not in json.dumps(listed)
    assert get(f"{url}/v1/incidents/inc-nope")[0] == 404
    assert get(f"{url}/v1/incidents/{'x' * 300}")[0] == 404


def test_slack_links_the_incident_instead_of_naming_server_paths(served, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, engine, ids = served
    with engine.connect() as conn:
        record = load_incident(conn, ids[3])
    record.actions.append(
        ActionRecord(
            action_key="k", step="evidence", action="collect_evidence", status="done", actor="agentwatch",
            started_ms=1, finished_ms=2, result={"path": "/var/lib/agentwatch/evidence/inc/v1", "version": 1},
            error=None,
        )
    )  # fmt: skip
    monkeypatch.setenv("AGENTWATCH_PUBLIC_URL", "https://agentwatch.example.com/")
    view = incident_view(record)
    text, blocks = incident_message(view, [])
    rendered = json.dumps(blocks) + details_text(view)
    assert f"<https://agentwatch.example.com/v1/incidents/{ids[3]}|open incident" in rendered
    assert "/var/lib/agentwatch" not in rendered and "collected (version 1)" in rendered
    monkeypatch.setenv("AGENTWATCH_PUBLIC_URL", "javascript:alert(1)")  # not a link: the CLI command instead
    rendered = json.dumps(incident_message(incident_view(record), [])[1])
    assert "javascript" not in rendered and f"agentwatch incidents show {ids[3]}" in rendered


def test_notifiers_without_their_own_incident_url_link_to_the_api(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agentwatch.notify.http import incident_link

    monkeypatch.delenv("AGENTWATCH_PUBLIC_URL", raising=False)
    assert incident_link(None, "inc-1") is None
    monkeypatch.setenv("AGENTWATCH_PUBLIC_URL", "https://aw.example.com")
    assert incident_link(None, "inc-1") == "https://aw.example.com/v1/incidents/inc-1"
    assert incident_link("https://soc.example/i/", "inc-1") == "https://soc.example/i/inc-1"  # their own wins
