"""What novelty's cold-start table does on agents that have no baseline yet, on the assistants corpora.

    python bench/cold_start.py [--corpora ../shared/corpora] [--min-severity medium] [--json]

``bench/quality.py --only assistants`` scores only what comes *after* each agent's warm-up. This
bench scores the sessions before a baseline, twice, through ``bench.quality.replay_and_score``
(the same replay and scoring) and the default config — once with the cold-start table
(:mod:`agentwatch.detectors.cold_start`) and once with it silenced (every score 0):

``warm-up``
    the assistants timeline with its warm-up sessions scored too (ASB clean runs of the even
    repetitions, τ-bench tasks 0–24, τ²-bench's first half — all benign), reported for the
    sessions that start before their agent has a baseline (``min_sessions_for_baseline`` closed
    sessions and ``min_events_for_baseline`` events) — each agent's first sessions;
``every session cold``
    every session of the corpora (warm-up and evaluation, ASB attacks included) as its agent's
    *first* session (the agent id made unique per session): a brand-new agent attacked on day one,
    and a brand-new assistant's ordinary work.

An item counts as in :mod:`bench.quality`: flagged (benign) or detected (attack) when an alert ≥
``--min-severity`` names its own events.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``monitor`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402 - after the script path fix above

from agentwatch.config import Config, load_config  # noqa: E402
from agentwatch.detectors.cold_start import DEFAULT_COLD_START_SCORES  # noqa: E402
from agentwatch.detectors.novelty import NoveltyConfig  # noqa: E402
from agentwatch.errors import ConfigError  # noqa: E402
from bench import corpus_assistants  # noqa: E402
from bench.quality import DEFAULT_CORPORA, START_MS, CorporaMissing, CorpusRun, ScoredItem, replay_and_score  # noqa: E402

BUILDERS: Final = (corpus_assistants.asb_sessions, corpus_assistants.tau_sessions, corpus_assistants.tau2_sessions)


def _sessions(corpora: Path) -> tuple[list[Any], list[Any]]:
    for relative in (*(f"asb/{p}" for p in corpus_assistants.ASB_LOGS.values()), corpus_assistants.TAU_FILE):
        if not (corpora / relative).exists():
            raise CorporaMissing(f"{corpora / relative} not found; hint: pass --corpora DIR")
    warm: list[Any] = []
    scored: list[Any] = []
    for build in BUILDERS:
        w, s = build(corpora)
        warm += w
        scored += s
    return warm, scored


def _timeline(sessions: list[Any]) -> list[Any]:
    """Every session scored (warm-up ones too), one after another in event time."""
    out = []
    clock = START_MS
    for session in sessions:
        out.append(session.build(clock, True))
        clock += session.duration_ms + 60_000
    return out


def cold_sessions(sessions: list[Any], min_sessions: int, min_events: int) -> set[str]:
    """Ids of the sessions that start before their agent has a baseline (novelty's rule, in timeline order)."""
    closed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    out = set()
    for session in sessions:
        seen = closed[session.agent]
        if seen[0] < min_sessions or seen[1] < min_events:
            out.add(session.session_id)
        seen[0] += 1
        seen[1] += len(session.events)
    return out


def _group(entry: ScoredItem) -> str:
    meta = entry.item.meta
    return meta["source"] + (f"/{meta['log']}" if meta["source"] == "asb" else f"/{meta.get('domain', '')}")


def _summary(items: list[ScoredItem], keep: Callable[[ScoredItem], bool]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[ScoredItem]] = defaultdict(list)
    for entry in items:
        if keep(entry):
            groups[_group(entry)].append(entry)
    out = {}
    for label, entries in sorted(groups.items()):
        sessions: dict[str, bool] = defaultdict(bool)
        for entry in entries:
            sessions[entry.session_id] |= entry.hit
        cold_rules = sorted({r for e in entries for r in e.rules if r.startswith("novelty/cold-start-")})
        out[label] = {
            "kind": entries[0].item.kind,
            "items": len(entries),
            "hit": sum(e.hit for e in entries),
            "hit_by_cold_start": sum(any(r.startswith("novelty/cold-start-") for r in e.rules) for e in entries),
            "sessions": len(sessions),
            "sessions_hit": sum(sessions.values()),
            "cold_start_rules": cold_rules,
            "flagged_tools": sorted({e.item.meta["tool"] for e in entries if e.hit and e.item.kind == "benign"})[:12],
        }
    return out


def silenced(config: Config) -> Config:
    """``config`` with novelty's cold-start table silenced (every default score 0)."""
    raw = msgspec.to_builtins(config)
    novelty = raw.setdefault("detectors", {}).setdefault("novelty", {})
    novelty.setdefault("config", {})["cold_start_scores"] = {
        tier: dict.fromkeys(row, 0.0) for tier, row in DEFAULT_COLD_START_SCORES.items()
    }
    return msgspec.convert(raw, Config)


def run(corpora: Path, min_severity: str = "medium") -> dict[str, Any]:
    config = load_config()
    policy = config.detectors.get("novelty")
    novelty = msgspec.convert(policy.config if policy is not None else {}, NoveltyConfig)
    report: dict[str, Any] = {"min_severity": min_severity, "corpora": str(corpora)}
    for label, cfg in (("with", config), ("without", silenced(config))):
        warm, scored = _sessions(corpora)
        ordered = warm + scored
        cold = cold_sessions(ordered, novelty.min_sessions_for_baseline, novelty.min_events_for_baseline)
        result = replay_and_score(CorpusRun("assistants-warm-up", "native", _timeline(ordered)), cfg, min_severity)
        report.setdefault("warm_up", {})[label] = _summary(result.items, lambda e, cold=cold: e.session_id in cold)
        warm, scored = _sessions(corpora)
        for session in warm + scored:  # every session its agent's first: a new agent id per session
            session.agent = f"{session.agent}#{session.session_id}"
            for event in session.events:
                event["agent_id"] = session.agent
        result = replay_and_score(
            CorpusRun("assistants-all-cold", "native", _timeline(warm + scored)), cfg, min_severity
        )
        report.setdefault("all_cold", {})[label] = _summary(result.items, lambda e: True)
    return report


def render(report: dict[str, Any], out: Callable[[str], None] = print) -> None:
    sev = report["min_severity"]
    titles = {
        "warm_up": "each agent's sessions before its baseline (the warm-up's first sessions)",
        "all_cold": "every session as its agent's first (agent id unique per session)",
    }
    for part, title in titles.items():
        out(f"\n{title}: items with an alert ≥ {sev} on their own events, with the cold-start table / without")
        with_, without = report[part]["with"], report[part]["without"]
        for group, row in with_.items():
            other = without.get(group, {"hit": 0, "sessions_hit": 0})
            what = "attacker-tool calls detected" if row["kind"] == "attack" else "benign tool calls flagged"
            out(
                f"  {group:<28} {row['hit']:>4} / {other['hit']:<4} of {row['items']:<5} {what}; sessions "
                f"{row['sessions_hit']} / {other['sessions_hit']} of {row['sessions']}; by cold-start rules "
                f"{row['hit_by_cold_start']} {' '.join(row['cold_start_rules'])}"
            )
            if row["flagged_tools"]:
                out(f"    flagged: {', '.join(row['flagged_tools'])}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA, help=f"default: {DEFAULT_CORPORA}")
    parser.add_argument("--min-severity", default="medium", help="an alert counts at or above this (default medium)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = run(args.corpora, args.min_severity)
    except (CorporaMissing, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        render(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
