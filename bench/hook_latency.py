"""Claude Code hook decisions: latency against a real ``agentwatch serve``, and allow/ask/deny rates on the corpora.

    python bench/hook_latency.py [--rate 200] [--seconds 20] [--sessions 400]
                                 [--corpora ../shared/corpora] [--limit N] [--json]

**Latency.** Starts ``agentwatch serve`` as a subprocess on loopback (its own SQLite store, an API
token, no broker), then sends recorded ``PreToolUse`` hook inputs
(``tests/fixtures/claude_code_hooks``: allowed, asked and denied calls, spread over ``--sessions``
sessions) to ``POST /v1/hooks/claude-code`` at ``--rate`` requests per second for ``--seconds``,
open loop: each request has a scheduled send time and its latency counts from that time, so a
stalled server is not hidden by the client waiting for it (no coordinated omission). Keep-alive
connections, a few client threads. Reports p50 / p90 / p99 / max and any non-200 answer. The client
runs on the same (small) machine as the server: the figures include its share of the CPU.

**Rates.** Every corpus of ``bench/quality.py`` (Atomic Red Team, tldr, the assistants) replayed as
the hook inputs Claude Code would have sent — a ``UserPromptSubmit`` per prompt, a ``PreToolUse``
per tool call (native ``tool_call``; for OTLP sessions the ``tool_result``, which carries the tool's
input), a ``PostToolUse`` per tool result — through the endpoint's own code
(:class:`agentwatch.observe.hook_gate.HookGate`, in process, one per corpus run, default config).
Reports the share of ``PreToolUse`` decisions that are allow / ask / deny, and per scored item
(an attack, a benign command) the strictest decision among its own calls: the ask rate on benign
work is the approval-fatigue figure, deny + ask on attacks what stops before it runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agentwatch.config import load_config  # noqa: E402
from agentwatch.events.audit_event import AuditEvent  # noqa: E402
from agentwatch.formats import get_decoder  # noqa: E402
from agentwatch.observe.hook_containment import Containment  # noqa: E402
from agentwatch.observe.hook_gate import HookGate, HookRefused, Publisher, prepare  # noqa: E402
from agentwatch.respond.session_guard import SessionVerdict  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "claude_code_hooks"
PRE_TOOL_USE = (
    "pre_tool_use_allow",
    "pre_tool_use_deny_ssh_key",
    "pre_tool_use_deny_curl_sh",
    "pre_tool_use_ask_upload",
)
STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}


# -- latency ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(tmp: Path, token: str) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {**os.environ, "AGENTWATCH_API_TOKEN": token, "AGENTWATCH_DATA_DIR": str(tmp / "data")}
    env.pop("AGENTWATCH_BOOTSTRAP_SERVERS", None)
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "agentwatch.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("serve did not answer /healthz within 60 s")


def bodies(sessions: int) -> list[bytes]:
    base = [json.loads((FIXTURES / f"{name}.json").read_text()) for name in PRE_TOOL_USE]
    out = []
    for i in range(sessions * len(base)):
        obj = dict(base[i % len(base)])
        obj["session_id"] = f"bench-{i // len(base) % sessions:05d}-{obj['session_id']}"
        obj["tool_use_id"] = f"toolu_bench_{i:08d}"
        out.append(json.dumps(obj).encode())
    return out


def drive(
    port: int, token: str, rate: float, seconds: float, payloads: list[bytes], threads: int = 8
) -> dict[str, Any]:
    total = int(rate * seconds)
    start = time.perf_counter() + 0.5
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    decisions: Counter[str] = Counter()
    lock = threading.Lock()
    next_index = [0]
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "X-Agentwatch-Installation": "bench-laptop",
        "X-Agentwatch-Principal": "bench",
    }

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= total:
                break
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                conn.request("POST", "/v1/hooks/claude-code", body=payloads[i % len(payloads)], headers=headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                status, body = 0, b""
            elapsed = time.perf_counter() - scheduled
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1
                if status == 200:
                    decisions[json.loads(body)["hookSpecificOutput"]["permissionDecision"]] += 1
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    achieved = total / (max(time.perf_counter() - start, 1e-9))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": total,
        "target_rate": rate,
        "achieved_rate": round(achieved, 1),
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        "statuses": dict(statuses),
        "decisions": dict(decisions),
    }


# -- rates on the corpora -------------------------------------------------------------------------
def hook_inputs(event: AuditEvent, call_seen: bool) -> list[dict[str, Any]]:
    """The hook inputs Claude Code would have sent for one decoded corpus event (``[]`` for none);
    ``call_seen``: a ``tool_result`` whose ``tool_call`` came before it (native sessions)."""
    base = {"session_id": event.session_id, "cwd": "/home/dev/project", "permission_mode": "default"}
    attrs = event.attributes or {}
    if event.kind == "prompt":
        return [{**base, "hook_event_name": "UserPromptSubmit", "prompt": str(attrs.get("content", ""))}]
    if event.kind not in ("tool_call", "tool_result") or not event.tool:
        return []
    tool_input = dict(event.args) if isinstance(event.args, dict) else {}
    if not tool_input and event.target:
        tool_input = {"command" if event.tool == "Bash" else "input": event.target}
    use = str(attrs.get("tool_use_id") or event.event_id)
    call = {**base, "tool_name": event.tool, "tool_input": tool_input, "tool_use_id": use}
    post = {**call, "hook_event_name": "PostToolUse", "tool_response": str(attrs.get("content", ""))}
    if event.kind == "tool_call":
        return [{**call, "hook_event_name": "PreToolUse"}]
    if call_seen:  # a native tool_result after its tool_call
        return [post]
    return [{**call, "hook_event_name": "PreToolUse"}, post]  # OTLP: the result carries the call


def rates(corpora: Path, limit: int | None) -> dict[str, Any]:
    from bench.quality import ADAPTERS, Options, check_corpora

    options = Options(corpora=corpora, limit=limit)
    check_corpora(options, ADAPTERS.values())
    config = load_config()
    active = (SessionVerdict("-", "active"), Containment())
    report: dict[str, Any] = {}
    for adapter in ADAPTERS.values():
        for run in adapter.runs(options):
            gate = HookGate(config, Publisher(None, "unused"))
            decoder = get_decoder(run.fmt)
            calls: Counter[str] = Counter()
            by_kind: dict[str, Counter[str]] = defaultdict(Counter)
            rules: Counter[str] = Counter()
            received = 1_772_442_000_000
            for session in run.sessions:
                events = [e for m in session.messages() for e in decoder(m, received).events]
                seen_calls: set[str] = set()
                decided: dict[int, str] = {}
                for position, event in enumerate(events):
                    attrs = event.attributes or {}
                    use = str(attrs.get("tool_use_id") or "")
                    call_seen = event.kind == "tool_result" and use in seen_calls
                    if event.kind == "tool_call" and use:
                        seen_calls.add(use)
                    for obj in hook_inputs(event, call_seen):
                        received += 1
                        try:
                            prepared = prepare(json.dumps(obj).encode(), {}, received)
                        except HookRefused:
                            continue
                        result = gate.observe(prepared, received, active if prepared.hook == "PreToolUse" else None)
                        if result is not None:
                            calls[result.decision] += 1
                            decided[position] = result.decision
                            if result.decision != "allow":
                                rules[f"{result.decision}:{result.rule}"] += 1
                for item in session.items:
                    own = [decided[p] for p in item.positions if p in decided]
                    if own:
                        by_kind[item.kind][max(own, key=STRICTNESS.__getitem__)] += 1
            n = sum(calls.values()) or 1
            report[run.name] = {
                "pre_tool_use": sum(calls.values()),
                "allow": round(calls["allow"] / n, 4),
                "ask": round(calls["ask"] / n, 4),
                "deny": round(calls["deny"] / n, 4),
                "items": {
                    kind: {"n": sum(c.values()), **{d: round(c[d] / (sum(c.values()) or 1), 4) for d in STRICTNESS}}
                    for kind, c in sorted(by_kind.items())
                },
                "top_rules": dict(rules.most_common(8)),
            }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--corpora", type=Path, default=None, help="the quality corpora; without it, latency only")
    parser.add_argument("--limit", type=int, default=None, help="items per corpus (quick run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    token = secrets.token_hex(24)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentwatch-hook-bench-") as tmp:
        proc, port = start_serve(Path(tmp), token)
        try:
            drive(port, token, args.rate, 2.0, bodies(20))  # warm-up, not reported
            out["latency"] = drive(port, token, args.rate, args.seconds, bodies(args.sessions))
        finally:
            proc.terminate()
            proc.wait(15)
    if args.corpora is not None:
        out["rates"] = rates(args.corpora, args.limit)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    lat = out["latency"]
    print(
        f"latency: {lat['requests']} PreToolUse decisions at {lat['target_rate']:g}/s "
        f"(achieved {lat['achieved_rate']}/s): "
        f"p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; "
        f"statuses {lat['statuses']}; decisions {lat['decisions']}"
    )
    for name, r in out.get("rates", {}).items():
        items = "; ".join(
            f"{kind} n={v['n']}: allow {v['allow']:.1%} ask {v['ask']:.1%} deny {v['deny']:.1%}"
            for kind, v in r["items"].items()
        )
        calls = f"allow {r['allow']:.1%}, ask {r['ask']:.1%}, deny {r['deny']:.1%}"
        print(f"{name}: {r['pre_tool_use']} calls: {calls} | {items}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
