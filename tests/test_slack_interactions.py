"""``POST /slack/interactions`` on the real ``serve`` endpoint over loopback, with payloads
signed exactly as Slack signs them and a fake Slack Web API behind the bot token."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agentwatch.observe.server import approval_service, make_server
from agentwatch.store import approval_votes, approvals, audit_log, open_store
from tests.fake_slack import FakeSlack, WebhookReceiver
from tests.test_approvals import ANA, APPROVER, EMAILS, GROUP, OUTSIDER, SECOND, SECRET, open_incident, request

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
_triggers = itertools.count(1)


class WallClock:
    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@dataclass
class Stack:
    url: str
    engine: Any
    fake: FakeSlack
    webhook: WebhookReceiver

    def click(
        self,
        approval_id: str,
        user: str,
        action_id: str = "agentwatch_approve",
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, bytes, dict[str, str]]:
        """POST one signed block_actions payload; returns (status, answer, body, headers) for replays."""
        if body is None:
            body = block_actions_body(approval_id, user, action_id, self.fake.response_url(next(_triggers)))
        if headers is None:
            headers = slack_headers(body, int(time.time()) if timestamp is None else timestamp, secret)
        return (*post(self.url, body, headers), body, headers)

    def approval(self, approval_id: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(approvals).where(approvals.c.approval_id == approval_id)).one()

    def wait_for(self, approval_id: str, status: str, timeout_s: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = self.approval(approval_id)
            if row.status == status and row.slack_rev == row.slack_synced_rev:
                return row
            time.sleep(0.02)
        raise AssertionError(f"{approval_id} never reached {status}: {self.approval(approval_id).status}")

    def last_response(self, count: int = 1, timeout_s: float = 5.0) -> dict[str, Any]:
        """The latest ephemeral answer, once ``count`` have arrived (they follow the HTTP answer)."""
        deadline = time.monotonic() + timeout_s
        while len(self.fake.responses) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.fake.responses) >= count, self.fake.responses
        return self.fake.responses[-1]

    def audit(self, action: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                r.data
                for r in conn.execute(select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.seq))
            ]


def block_actions_body(approval_id: str, user: str, action_id: str, response_url: str) -> bytes:
    """Form-encoded ``payload=<json>`` as Slack sends a button click."""
    n = next(_triggers)
    payload = {
        "type": "block_actions",
        "team": {"id": "T0TEAM", "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "legacy-verification-token",
        "trigger_id": f"{n}.123.abcdef",
        "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": "C0INCIDENTS"},
        "channel": {"id": "C0INCIDENTS", "name": "incidents"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"approval:{approval_id}:1",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": approval_id,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


def slack_headers(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request_ = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request_, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post_too_big(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    """Send a body over the size cap: the server answers 413 and closes, maybe while the client is still
    sending (a broken pipe or a reset on a loaded machine, no status to read: None)."""
    try:
        return post(url, body, headers)[0]
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (BrokenPipeError, ConnectionResetError)):
            return None
        raise
    except (BrokenPipeError, ConnectionResetError):
        return None


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET.decode())
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with (
        FakeSlack(users={**EMAILS, "UNOEMAIL01": None}, groups={GROUP: [SECOND, ANA]}) as fake,
        WebhookReceiver(SECRET) as webhook,
    ):
        monkeypatch.setenv("TEST_REVOKE_URL", webhook.url)
        env = {
            "AGENTWATCH_SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "AGENTWATCH_SLACK_BOT_TOKEN": "xoxb-test",
            "AGENTWATCH_SLACK_CHANNEL": "C0INCIDENTS",
            "AGENTWATCH_SLACK_API_URL": fake.api_url,
        }
        service = approval_service(engine, tmp_path / "data", "agent.control", environ=env)
        service.runtime.send = lambda messages: None  # quarantine's control command: acked by nobody here
        server = make_server("127.0.0.1", 0, engine, service)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield Stack(f"http://127.0.0.1:{server.server_address[1]}/slack/interactions", engine, fake, webhook)
        finally:
            server.shutdown()
            server.server_close()


def pending(stack: Stack, action: str = "revoke_credentials", **params: Any) -> str:
    incident_id = open_incident(stack.engine, params.pop("session", "s1"))
    approval_id = request(stack.engine, incident_id, WallClock(), action=action, **params)
    stack.wait_for(approval_id, "pending")  # the serve worker posted the message
    return approval_id


def message_text(fake: FakeSlack) -> str:
    [message] = fake.messages.values()
    return json.dumps(message.blocks, ensure_ascii=False) + "\n".join(t["text"] for t in message.thread)


def test_approve_runs_the_action_once_and_the_message_updates(stack: Stack) -> None:
    approval_id = pending(stack)
    assert "agentwatch_approve" in message_text(stack.fake)
    status, _, _, _ = stack.click(approval_id, APPROVER)
    assert status == 200
    row = stack.wait_for(approval_id, "executed")
    assert row.received_ms is not None and row.executed_ms >= row.received_ms
    assert len(stack.webhook.requests) == 1 and stack.webhook.requests[0]["valid"]
    text = message_text(stack.fake)
    assert f"Approved by <@{APPROVER}>" in text and "revoke credentials* — executed" in text
    assert "agentwatch_approve" not in text  # buttons gone once decided
    assert "revoke credentials* done: credentials revocation accepted (HTTP 200" in text
    # a second click after the decision: refused, audited, told privately; nothing runs again
    status, _, _, _ = stack.click(approval_id, APPROVER)
    assert status == 200 and [d["reason"] for d in stack.audit("approval.refused")] == ["closed"]
    answer = stack.last_response()
    assert "was not recorded: the approval is already closed" in answer["text"]
    assert answer["response_type"] == "ephemeral"
    time.sleep(0.3)
    assert len(stack.webhook.requests) == 1


def test_deny(stack: Stack) -> None:
    approval_id = pending(stack)
    assert stack.click(approval_id, SECOND, "agentwatch_deny")[0] == 200  # SECOND approves via the group
    stack.wait_for(approval_id, "denied")
    assert stack.webhook.requests == [] and f"Denied by <@{SECOND}>" in message_text(stack.fake)


def test_quorum_of_two_and_a_double_click(stack: Stack) -> None:
    approval_id = pending(stack, "quarantine_agent", quorum=2)
    stack.click(approval_id, APPROVER)
    stack.click(approval_id, APPROVER)  # double click: a second request, a second trigger
    assert stack.approval(approval_id).status == "pending"
    assert [d["reason"] for d in stack.audit("approval.refused")] == ["duplicate_vote"]
    stack.click(approval_id, SECOND)
    stack.wait_for(approval_id, "executed")
    with stack.engine.connect() as conn:
        assert sorted(r.user_id for r in conn.execute(select(approval_votes))) == [APPROVER, SECOND]


@pytest.mark.parametrize(
    "user, reason",
    [
        (OUTSIDER, "not_an_approver"),
        (ANA, "self_approval"),  # the principal the agent acted for (ana@example.com, by users.info)
    ],
)
def test_unauthorised_clicks_are_refused_and_audited(stack: Stack, user: str, reason: str) -> None:
    approval_id = pending(stack)
    assert stack.click(approval_id, user)[0] == 200
    assert [(d["reason"], d["user_id"]) for d in stack.audit("approval.refused")] == [(reason, user)]
    assert stack.approval(approval_id).status == "pending" and stack.webhook.requests == []
    assert "was not recorded" in stack.last_response()["text"]


def test_approver_without_an_email_is_refused_fail_closed(stack: Stack) -> None:
    approval_id = pending(stack, approvers=["UNOEMAIL01"])
    stack.click(approval_id, "UNOEMAIL01")
    assert [d["reason"] for d in stack.audit("approval.refused")] == ["identity_unavailable"]
    assert stack.approval(approval_id).status == "pending"


def test_forged_signature_is_refused_and_audited(stack: Stack) -> None:
    approval_id = pending(stack)
    status, answer, _, _ = stack.click(approval_id, APPROVER, secret="not-the-signing-secret")
    assert (status, json.loads(answer)) == (401, {"error": "bad_signature"})
    body = block_actions_body(approval_id, APPROVER, "agentwatch_approve", stack.fake.response_url())
    assert post(stack.url, body, {"Content-Type": "application/x-www-form-urlencoded"})[0] == 401  # unsigned
    assert [d["reason"] for d in stack.audit("slack.request_refused")] == ["bad_signature", "bad_signature"]
    assert stack.approval(approval_id).status == "pending" and stack.audit("approval.vote") == []


def test_stale_timestamp_is_refused(stack: Stack) -> None:
    approval_id = pending(stack)
    status, answer, _, _ = stack.click(approval_id, APPROVER, timestamp=int(time.time()) - 301)
    assert (status, json.loads(answer)) == (401, {"error": "stale"})
    assert [d["reason"] for d in stack.audit("slack.request_refused")] == ["stale"]
    assert stack.approval(approval_id).status == "pending"


def test_replayed_request_is_refused(stack: Stack) -> None:
    approval_id = pending(stack, quorum=2)
    status, _, body, headers = stack.click(approval_id, APPROVER)
    assert status == 200
    replay = post(stack.url, body, headers)  # byte-for-byte the same request, within the window
    assert replay == (409, b'{"error":"replay"}')
    assert [d["reason"] for d in stack.audit("slack.request_refused")] == ["replay"]
    assert len(stack.audit("approval.vote")) == 1


def test_details_button_answers_privately(stack: Stack) -> None:
    approval_id = pending(stack)
    assert stack.click(approval_id, OUTSIDER, "agentwatch_details")[0] == 200
    answer = stack.last_response()
    assert answer["response_type"] == "ephemeral" and "secret＿access" in answer["text"]
    assert stack.audit("approval.vote") == [] and stack.audit("approval.refused") == []


def test_without_a_signing_secret_the_route_is_off(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    server = make_server("127.0.0.1", 0, engine, approval_service(engine, tmp_path, "agent.control", environ={}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        body = b"payload=%7B%7D"
        status, _ = post(
            f"http://127.0.0.1:{server.server_address[1]}/slack/interactions",
            body,
            slack_headers(body, int(time.time())),
        )
        assert status == 404
    finally:
        server.shutdown()
        server.server_close()


# -- every refused attempt leaves an audit record --------------------------------------------
def signed_payload(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return body, slack_headers(body, int(time.time()))


def test_signed_click_with_an_empty_user_id_is_refused_and_audited(stack: Stack) -> None:
    approval_id = pending(stack)
    for user in ({"id": ""}, {}, None):
        body = block_actions_body(approval_id, APPROVER, "agentwatch_approve", stack.fake.response_url())
        payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0]) | {"user": user}
        status, answer = post(stack.url, *signed_payload(payload))
        assert (status, json.loads(answer)) == (400, {"error": "missing_user"})
    assert [d["reason"] for d in stack.audit("slack.request_refused")] == ["missing_user"] * 3
    assert stack.approval(approval_id).status == "pending" and stack.audit("approval.vote") == []


def test_oversize_body_is_refused_413_and_audited(stack: Stack) -> None:
    body = b"payload=" + b"A" * (1_048_576 + 10)
    status, answer = post(stack.url, body, slack_headers(body, int(time.time())))
    assert (status, json.loads(answer)) == (413, {"error": "oversize"})
    [record] = stack.audit("slack.request_refused")
    assert record["reason"] == "oversize" and record["remote"] == "127.0.0.1"


def test_oversize_chunked_body_without_a_length_is_refused_and_audited(stack: Stack) -> None:
    import http.client

    host, port = urllib.parse.urlsplit(stack.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    chunks = iter([b"payload=" + b"A" * 600_000, b"A" * 600_000])
    conn.request(
        "POST",
        "/slack/interactions",
        body=chunks,
        encode_chunked=True,
        headers={"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"},
    )
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    assert [d["reason"] for d in stack.audit("slack.request_refused")] == ["oversize"]


def test_malformed_signed_payloads_are_refused_and_audited(stack: Stack) -> None:
    bodies = [
        b"payload=%7Bnot-json",
        b"nopayload=1",
        urllib.parse.urlencode({"payload": "[]"}).encode(),
        urllib.parse.urlencode({"payload": json.dumps({"type": "block_actions", "actions": "x"})}).encode(),
        b"payload=\xff\xfe",
    ]
    for body in bodies:
        status, answer = post(stack.url, body, slack_headers(body, int(time.time())))
        assert (status, json.loads(answer)) == (400, {"error": "malformed"}), body
    assert [d["reason"] for d in stack.audit("slack.request_refused")] == ["malformed"] * len(bodies)


def test_every_kind_of_refusal_is_in_the_audit_log(stack: Stack) -> None:
    """bad signature, stale, replay, oversize, missing user, malformed, unauthorised approver: all audited."""
    approval_id = pending(stack, quorum=2)
    stack.click(approval_id, APPROVER, secret="wrong-secret-0000")
    stack.click(approval_id, APPROVER, timestamp=int(time.time()) - 3600)
    _, _, body, headers = stack.click(approval_id, APPROVER)
    post(stack.url, body, headers)
    big = b"payload=" + b"A" * (2 << 20)
    assert post_too_big(stack.url, big, slack_headers(big, int(time.time()))) in (413, None)
    click = json.loads(
        urllib.parse.parse_qs(block_actions_body(approval_id, "", "agentwatch_approve", "").decode())["payload"][0]
    )
    post(stack.url, *signed_payload(click))
    post(stack.url, b"payload=%7B", slack_headers(b"payload=%7B", int(time.time())))
    stack.click(approval_id, OUTSIDER)
    refused = [d["reason"] for d in stack.audit("slack.request_refused")]
    assert refused == ["bad_signature", "stale", "replay", "oversize", "missing_user", "malformed"]
    assert [d["reason"] for d in stack.audit("approval.refused")] == ["not_an_approver"]
    with stack.engine.connect() as conn:
        actors = {r.actor for r in conn.execute(select(audit_log).where(audit_log.c.action == "slack.request_refused"))}
    assert actors == {"slack", "slack:unverified"}
