"""Third-party detection quality: public corpora nobody here wrote, through ``replay``'s code.

    python bench/quality.py [--corpora ../shared/corpora] [--only art,tldr,assistants] [--limit N]
                            [--split dev|holdout] [--min-severity medium] [--show-misses 20] [--json]

The corpora are read in place from ``../shared/corpora`` (beside the repository; see its
README for sources, licences and caveats) and never copied. Each *corpus adapter*
(:data:`ADAPTERS`) turns one corpus into labelled sessions in an input format the monitor
decodes; every run goes through ``agentwatch.ingest.replay.replay_file`` with a fresh
``agentwatch.detect.pipeline.build_pipeline(config)`` and the default config (or ``--config``),
exactly as ``agentwatch replay --format <fmt>`` would, and its published alerts are scored:

- an *attack item* (an Atomic Red Team test, an ASB attacker-tool call) is **detected** when a
  published alert of severity ≥ ``--min-severity`` names one of the item's own events (in
  ``event_id`` or ``event_ids``); Atomic recall is reported per ATT&CK tactic — a technique
  with several tactics counts under each — separately for the inline and write-then-run variants;
- a *benign item* (a tldr example command, an assistant's ordinary tool call) is **flagged** on
  the same condition; tldr is reported with offensive-tool pages apart;
- *context* items (benign steps around an attack) are a diagnostic: an alert on them is
  an alert on the wrong event.

Corpora: ``art`` (Atomic Red Team as Claude Code OTLP sessions, :mod:`bench.corpus_art`),
``tldr`` (tldr-pages examples, :mod:`bench.corpus_tldr`), ``assistants`` (ASB, τ-bench and
τ²-bench as native sessions, warm-up sessions first, :mod:`bench.corpus_assistants`).
``--split dev|holdout`` keeps one half of Atomic (by technique id), tldr (by page) and the
assistants' scored items (ASB attack runs by attacker tool, clean ASB runs by agent and task,
τ/τ² by task; every session is still replayed, so the halves add up to the whole): write rules
from ``dev``, measure what generalises on ``holdout``.

Per-rule counts come from a second, instrumented pass over the same messages (a
recorder wrapped around the pipeline's decision step sees each finding's ``rule``, which
the alert record does not carry); that pass must publish the same alerts as the first, and
the report says whether it did. ``events/s`` is the first pass's: ``replay_file`` over the
run's file, on this machine, detection included.

Extension point: an adapter names its files under the corpora directory, builds
:class:`CorpusRun` s (sessions in any decoder format) and summarises its scored items; the
replay, labelling and scoring are shared.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

if __package__ in (None, ""):  # run as a script: make ``bench`` and ``monitor`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402 - after the script path fix above

from agentwatch.config import Config, load_config  # noqa: E402
from agentwatch.detect.alerts import Alert  # noqa: E402
from agentwatch.detect.detector_registry import active_detectors  # noqa: E402
from agentwatch.detect.pipeline import Pipeline, build_pipeline  # noqa: E402
from agentwatch.detect.policy import SEVERITIES, SEVERITY_RANK  # noqa: E402
from agentwatch.errors import ConfigError  # noqa: E402
from agentwatch.formats import get_decoder  # noqa: E402
from agentwatch.ingest.replay import replay_file  # noqa: E402
from bench import corpus_art, corpus_assistants, corpus_tldr  # noqa: E402
from bench.quality_model import Item, LabelledSession  # noqa: E402

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_CORPORA: Final = REPO.parent / "shared" / "corpora"
#: 2026-03-02T09:00:00Z: every run's sessions start here, spaced apart.
START_MS: Final = 1_772_442_000_000
#: ATT&CK's tactic order, and the tactics with a ≥ 90 % recall target (issue 11).
TACTIC_ORDER: Final = (
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
    "unmapped",
)
TARGET_TACTICS: Final = frozenset(
    {
        "credential-access",
        "exfiltration",
        "persistence",
        "privilege-escalation",
        "defense-evasion",
        "impact",
        "command-and-control",
        "execution",
    }
)
_alert_decoder = msgspec.json.Decoder(Alert)


class CorporaMissing(Exception):
    """The corpora directory (or a file an adapter needs) is not there."""


@dataclass(frozen=True, slots=True)
class Options:
    corpora: Path
    limit: int | None = None
    min_severity: str = "medium"
    seed: int = 1234
    agents: int = 8
    tldr_per_session: int = 10
    show_misses: int = 20
    show_flagged: int = 25
    #: ``detector/rule`` labels whose findings do not count (e.g. to see recall without a broad rule)
    ignore_rules: frozenset[str] = frozenset()
    #: ``all``, or one half of each corpus (:func:`split_of`): ``dev`` to look at while writing rules,
    #: ``holdout`` to measure whether what was written from ``dev`` generalises.
    split: str = "all"


SPLITS: Final = ("all", "dev", "holdout")


def split_of(key: str) -> str:
    """The half a corpus item belongs to, stable across runs and machines: ``dev`` or ``holdout``.

    Atomic Red Team splits by technique id (all tests of T1053.003 on one side), tldr by page,
    so a rule written from a dev test cannot have seen a holdout test of the same (sub-)technique;
    the assistants by each session's ``split_key`` (ASB: ``asb-tool:<attacker tool>`` for an attack run).

    >>> split_of("T1053"), split_of("T1003")
    ('holdout', 'dev')
    """
    return "dev" if hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % 2 == 0 else "holdout"


def in_split(key: str, split: str) -> bool:
    return split == "all" or split_of(key) == split


@dataclass(slots=True)
class CorpusRun:
    """One replay: sessions of one format through one fresh pipeline."""

    name: str
    fmt: str
    sessions: list[LabelledSession]


@dataclass(slots=True)
class ScoredItem:
    item: Item
    session_id: str
    #: detector → highest severity of a qualifying published alert naming the item's events
    detectors: dict[str, str] = field(default_factory=dict)
    #: events from the item's first own event to the event that raised the earliest such alert
    events_to_detect: int | None = None
    #: ``detector/rule`` of qualifying findings (instrumented pass) naming the item's events
    rules: set[str] = field(default_factory=set)

    @property
    def hit(self) -> bool:
        return bool(self.detectors)

    @property
    def severity(self) -> str | None:
        return max(self.detectors.values(), key=SEVERITY_RANK.__getitem__) if self.detectors else None


@dataclass(slots=True)
class ScoredRun:
    run: CorpusRun
    items: list[ScoredItem]
    stats: dict[str, Any]


class CorpusAdapter(Protocol):
    """One corpus: where it lives, how it becomes runs, how its scored items are summarised."""

    name: str
    #: Files under the corpora directory that must exist (checked before anything runs).
    required: tuple[str, ...]

    def runs(self, options: Options) -> list[CorpusRun]: ...

    def summarise(self, scored: ScoredRun, options: Options) -> dict[str, Any]: ...


# --- Replaying and scoring (shared by every adapter) ----------------------------------


class FindingRecorder:
    """Records every finding the pipeline decides on, with its rule, without changing a decision.

    Wraps the pipeline's decision step on the instance (``Pipeline._decide``): the alert
    record does not carry ``Finding.rule``, and a finding folded into a session's existing
    alert at the same severity publishes no new revision — the recorder still sees both.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        original = getattr(pipeline, "_decide", None)
        if original is None:
            raise RuntimeError(
                "agentwatch.detect.pipeline.Pipeline has no _decide step; update bench/quality.py's recorder"
            )
        self.findings: list[RecordedFinding] = []

        def recording(active: Any, found: Sequence[Any], session: Any, event: Any) -> list[Alert]:
            policy = active.policy
            for finding in found:
                severity = policy.severity_for(finding.score) if policy.qualifies(finding.score) else None
                self.findings.append(
                    RecordedFinding(
                        active.name,
                        finding.rule or "-",
                        severity,
                        policy.mode,
                        session.session_id,
                        tuple(finding.event_ids) or (event.event_id,),
                        event.event_id,
                    )
                )
            return original(active, found, session, event)

        pipeline._decide = recording  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class RecordedFinding:
    detector: str
    rule: str
    #: the policy's severity for the score, None when it is below the detector's min_score
    severity: str | None
    mode: str
    session_id: str
    event_ids: tuple[str, ...]
    #: the event being processed when the detector reported it
    at_event_id: str


def replay_and_score(
    run: CorpusRun, config: Config, min_severity: str, ignore_rules: frozenset[str] = frozenset()
) -> ScoredRun:
    """Replay ``run`` twice (plain ``replay_file``, then instrumented) and score its items.

    An item is *hit* by a detector when, in the instrumented pass, that detector reported a
    finding whose policy severity is ≥ ``min_severity`` and whose ``event_ids`` include one
    of the item's own events, **and** the detector's alert for that session was published
    at ≥ ``min_severity`` (so shadow mode and ``min_count`` policies are honoured). Judging
    each finding, not only the alert revisions published, keeps a benign command folded
    into an alert an earlier command raised from going uncounted.
    """
    min_rank = SEVERITY_RANK[min_severity]
    decoder = get_decoder(run.fmt)
    scored: list[ScoredItem] = []
    owner: dict[str, list[tuple[ScoredItem, int]]] = defaultdict(list)  # event id → (item, position)
    position_of: dict[str, int] = {}
    decode_errors = 0
    for session in run.sessions:
        ids = []
        for message in session.messages():
            decoded = decoder(message, START_MS)
            decode_errors += len(decoded.errors)
            ids.extend(event.event_id for event in decoded.events)
        if len(ids) != session.events:
            raise RuntimeError(
                f"{run.name}: session {session.session_id} decoded to {len(ids)} events, built {session.events}"
            )
        for position, event_id in enumerate(ids):
            position_of[event_id] = position
        for item in session.items:
            entry = ScoredItem(item, session.session_id)
            scored.append(entry)
            for position in item.positions:
                owner[ids[position]].append((entry, position))

    with tempfile.TemporaryDirectory(prefix="agentwatch-quality-") as tmp:
        events_path = Path(tmp) / f"{run.name}.jsonl"
        with open(events_path, "wb") as out:
            for session in run.sessions:
                out.write(session.message + b"\n")
        received_ms = int(os.stat(events_path).st_mtime * 1000)
        alerts_path = Path(tmp) / "alerts.jsonl"
        pipeline = build_pipeline(config)
        cpu_started = time.process_time()
        with open(alerts_path, "wb") as alerts_out:
            stats = replay_file(events_path, alerts_out, pipeline, run.fmt)
        cpu_seconds = time.process_time() - cpu_started
        alerts = [_alert_decoder.decode(line) for line in alerts_path.read_bytes().splitlines() if line]

    instrumented = build_pipeline(config)
    recorder = FindingRecorder(instrumented)
    second: list[Alert] = []
    for session in run.sessions:
        for message in session.messages():
            second.extend(instrumented.ingest(message, decoder, received_ms).alerts)
    second.extend(instrumented.drain())

    published = {(a.session_id, a.detector) for a in alerts if SEVERITY_RANK[a.severity] >= min_rank}
    for found in recorder.findings:
        if found.severity is None or SEVERITY_RANK[found.severity] < min_rank:
            continue
        if (found.session_id, found.detector) not in published:
            continue
        label = f"{found.detector}/{found.rule}"
        if label in ignore_rules:
            continue
        at = position_of.get(found.at_event_id)
        for event_id in found.event_ids:
            for entry, _ in owner.get(event_id, ()):
                if entry.session_id != found.session_id:
                    continue
                entry.rules.add(label)
                best = entry.detectors.get(found.detector)
                if best is None or SEVERITY_RANK[found.severity] > SEVERITY_RANK[best]:
                    entry.detectors[found.detector] = found.severity
                if at is not None:
                    delay = max(0, at - entry.item.start)
                    if entry.events_to_detect is None or delay < entry.events_to_detect:
                        entry.events_to_detect = delay
    named_by_published = set()
    for alert in alerts:
        if SEVERITY_RANK[alert.severity] >= min_rank:
            for event_id in {alert.event_id, *alert.event_ids}:
                named_by_published.update(id(entry) for entry, _ in owner.get(event_id, ()))

    rank_counts = Counter(a.severity for a in alerts)
    run_stats = {
        "sessions": len(run.sessions),
        "events": stats.events,
        "decode_errors": decode_errors + stats.dead_letters,
        "alerts": stats.alerts,
        "alerts_by_severity": {s: rank_counts[s] for s in SEVERITIES if rank_counts[s]},
        "items_named_by_published_alerts": sum(id(e) in named_by_published for e in scored),
        "replay_seconds": round(stats.seconds, 3),
        "events_per_second": round(stats.events / stats.seconds) if stats.seconds else None,
        "replay_cpu_seconds": round(cpu_seconds, 3),
        "plugin_errors": {f"{d}.{h}": n for (d, h), n in pipeline.plugin_errors.items()},
        "shadow_alerts": dict(pipeline.shadow_alerts),
        "instrumented_pass_matches": _same_alerts(alerts, second),
    }
    return ScoredRun(run, scored, run_stats)


def _same_alerts(first: Sequence[Alert], second: Sequence[Alert]) -> bool:
    def key(a: Alert) -> tuple[str, int, str, str]:
        return (a.alert_id, a.revision, a.severity, a.event_id)

    return sorted(map(key, first)) == sorted(map(key, second))


def item_counts(entries: Iterable[ScoredItem]) -> dict[str, Any]:
    """How many items, how many hit, and by which detectors / rules."""
    entries = list(entries)
    hit = [e for e in entries if e.hit]
    by_detector: Counter[str] = Counter(d for e in hit for d in e.detectors)
    by_rule: Counter[str] = Counter(r for e in entries for r in e.rules)
    return {
        "items": len(entries),
        "hit": len(hit),
        "rate": round(len(hit) / len(entries), 4) if entries else None,
        "by_detector": dict(by_detector.most_common()),
        "by_rule": dict(by_rule.most_common()),
    }


def _distribution(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "median": statistics.median(ordered),
        "p90": ordered[int(0.9 * (len(ordered) - 1))],
        "max": ordered[-1],
    }


def _clip(text: str, limit: int = 160) -> str:
    flat = " ⏎ ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- Adapters ------------------------------------------------------------------------


class AtomicRedTeamAdapter:
    """Atomic Red Team Linux/macOS sh/bash tests as Claude Code sessions, inline and write-then-run."""

    name = "atomic-red-team"
    required = ("atomic-red-team/SELECTED_TESTS.tsv", "atomic-red-team/atomics")

    def runs(self, options: Options) -> list[CorpusRun]:
        tests = corpus_art.load_tests(options.corpora / "atomic-red-team", options.limit)
        tests = [t for t in tests if in_split(t.technique, options.split)]
        return [
            CorpusRun(
                f"art_{variant}",
                "otlp-json",
                corpus_art.build_sessions(tests, variant, start_ms=START_MS, agents=options.agents),
            )
            for variant in corpus_art.VARIANTS
        ]

    def summarise(self, scored: ScoredRun, options: Options) -> dict[str, Any]:
        attacks = [e for e in scored.items if e.item.kind == "attack"]
        context = [e for e in scored.items if e.item.kind == "context"]
        by_tactic: dict[str, list[ScoredItem]] = defaultdict(list)
        by_technique: dict[str, list[ScoredItem]] = defaultdict(list)
        for entry in attacks:
            by_technique[entry.item.meta["technique"]].append(entry)
            for tactic in entry.item.meta["tactics"]:
                by_tactic[tactic].append(entry)
        overall = item_counts(attacks)
        misses = [e for e in attacks if not e.hit]
        return {
            "variant": scored.run.name.removeprefix("art_"),
            "tests": overall["items"],
            "detected": overall["hit"],
            "recall": overall["rate"],
            "by_tactic": {
                t: _recall(by_tactic[t]) | {"target": t in TARGET_TACTICS} for t in TACTIC_ORDER if t in by_tactic
            },
            "by_technique": {t: _recall(v) for t, v in sorted(by_technique.items())},
            "by_detector": overall["by_detector"],
            "by_rule": overall["by_rule"],
            "events_to_detect": _distribution([e.events_to_detect for e in attacks if e.events_to_detect is not None]),
            "context_flagged": sum(e.hit for e in context),
            "context_by_detector": item_counts(context)["by_detector"],
            "misses": len(misses),
            "misses_shown": [
                {
                    "guid": e.item.meta["guid"],
                    "technique": e.item.meta["technique"],
                    "tactics": e.item.meta["tactics"],
                    "name": e.item.meta["name"],
                    "command": _clip(e.item.meta["command"]),
                }
                for e in misses[: options.show_misses]
            ],
        } | {"run": scored.stats}


def _recall(entries: list[ScoredItem]) -> dict[str, Any]:
    hit = sum(e.hit for e in entries)
    return {"tests": len(entries), "detected": hit, "recall": round(hit / len(entries), 4) if entries else None}


class TldrAdapter:
    """tldr-pages example commands as benign Claude Code sessions; offensive-tool pages apart."""

    name = "tldr"
    required = ("tldr/pages/common", "tldr/pages/linux", "tldr/pages/osx")

    def runs(self, options: Options) -> list[CorpusRun]:
        examples = corpus_tldr.load_examples(options.corpora / "tldr", options.limit, options.seed)
        examples = [e for e in examples if in_split(e.page, options.split)]
        sessions = corpus_tldr.build_sessions(
            examples,
            start_ms=START_MS,
            per_session=options.tldr_per_session,
            agents=options.agents,
            seed=options.seed,
        )
        return [CorpusRun("tldr", "otlp-json", sessions)]

    def summarise(self, scored: ScoredRun, options: Options) -> dict[str, Any]:
        out: dict[str, Any] = {}
        commands = [e for e in scored.items if e.item.kind == "benign"]
        by_session: dict[str, list[ScoredItem]] = defaultdict(list)
        for entry in scored.items:
            by_session[entry.session_id].append(entry)
        for label, offensive in (("benign", False), ("offensive", True)):
            group = [e for e in commands if e.item.meta["offensive"] is offensive]
            sessions = {e.session_id for e in group}
            counts = item_counts(group)
            flagged = [e for e in group if e.hit]
            out[label] = {
                "commands": counts["items"],
                "flagged": counts["hit"],
                "rate": counts["rate"],
                "pages": len({e.item.meta["page"] for e in group}),
                "sessions": len(sessions),
                "sessions_flagged": sum(any(x.hit for x in by_session[s]) for s in sessions),
                "by_detector": counts["by_detector"],
                "by_rule": counts["by_rule"],
                "flagged_shown": [
                    {
                        "page": e.item.meta["page"],
                        "command": _clip(e.item.meta["command"]),
                        "detectors": dict(sorted(e.detectors.items())),
                        "rules": sorted(e.rules),
                    }
                    for e in flagged[: options.show_flagged]
                ],
            }
            if offensive:
                out[label]["flagged_pages"] = sorted({e.item.meta["page"] for e in flagged})
        return out | {"run": scored.stats}


class AssistantsAdapter:
    """Tool-using assistants: ASB (attacks and clean runs), τ-bench and τ²-bench (benign), warm-up first.

    One run, one pipeline: every source's warm-up sessions (unscored), then every source's
    evaluation sessions, so the learned detectors have seen each agent's ordinary work first.
    ``--split`` replays the same sessions and scores only its half's items, so the two halves add up
    to the whole run exactly (dropping the other half's sessions would change what novelty has
    learned before each attack, e.g. how well an agent is baselined, and with it the figures).
    """

    name = "assistants"
    required = (
        *(f"asb/{p}" for p in corpus_assistants.ASB_LOGS.values()),
        corpus_assistants.TAU_FILE,
        *corpus_assistants.TAU2_FILES.values(),
    )

    def runs(self, options: Options) -> list[CorpusRun]:
        root = options.corpora
        warm: list[Any] = []
        scored: list[Any] = []
        for build in (corpus_assistants.asb_sessions, corpus_assistants.tau_sessions, corpus_assistants.tau2_sessions):
            w, s = build(root)
            if options.limit is not None:  # a quick run: the first N scored sessions of each source and log
                kept: dict[str, int] = defaultdict(int)
                s = [x for x in s if _take(kept, x, options.limit)]
            for x in s:
                if not in_split(x.split_key, options.split):
                    x.items = []  # replayed as in the whole run (what novelty learns is unchanged), not scored
            warm += w
            scored += s
        return [CorpusRun("assistants", "native", corpus_assistants.timeline(warm, scored, START_MS))]

    def summarise(self, scored: ScoredRun, options: Options) -> dict[str, Any]:
        groups: dict[str, list[ScoredItem]] = defaultdict(list)
        for entry in scored.items:
            meta = entry.item.meta
            label = meta["source"] + (f"/{meta['log']}" if meta["source"] == "asb" else f"/{meta.get('domain', '')}")
            groups[label].append(entry)
        out: dict[str, Any] = {}
        for label, entries in sorted(groups.items()):
            sessions: dict[str, list[ScoredItem]] = defaultdict(list)
            for entry in entries:
                sessions[entry.session_id].append(entry)
            kind = entries[0].item.kind
            counts = item_counts(entries)
            row: dict[str, Any] = {
                "kind": kind,
                "items": counts["items"],
                "hit": counts["hit"],
                "rate": counts["rate"],
                "sessions": len(sessions),
                "sessions_flagged": sum(any(e.hit for e in v) for v in sessions.values()),
                "by_detector": counts["by_detector"],
                "by_rule": counts["by_rule"],
            }
            if kind == "attack":
                repeats = _repeat_misses(sessions.values())
                row["repeat_misses"] = repeats
                row["first_calls"] = {"items": counts["items"] - repeats, "hit": counts["hit"]}
                row["events_to_detect"] = _distribution(
                    [e.events_to_detect for e in entries if e.events_to_detect is not None]
                )
                row["misses_shown"] = sorted({e.item.meta["tool"] for e in entries if not e.hit})[: options.show_misses]
            else:
                row["flagged_shown"] = sorted(
                    {f"{e.item.meta['tool']} ({', '.join(sorted(e.rules))})" for e in entries if e.hit}
                )[: options.show_flagged]
            out[label] = row
        return {"groups": out} | {"run": scored.stats}


def _repeat_misses(sessions: Iterable[list[ScoredItem]]) -> int:
    """Missed calls that repeat a tool whose earlier call in the same session was detected.

    A detector keeps one alert per session: a repeat is folded into the stored alert (its event joins
    ``event_ids``) and is not published again unless its severity rises, so per-call recall counts it
    as missed. Reported apart so the figure says which misses are a first call nobody saw.
    """
    out = 0
    for entries in sessions:
        seen: set[str] = set()
        for entry in sorted(entries, key=lambda e: e.item.start):
            tool = entry.item.meta.get("tool")
            if entry.hit:
                seen.add(tool)
            elif tool in seen:
                out += 1
    return out


def _take(kept: dict[str, int], session: Any, limit: int) -> bool:
    """Whether a quick run keeps ``session``: fewer than ``limit`` kept yet from its source and log."""
    meta = session.items[0].meta if session.items else {}
    group = f"{meta.get('source')}/{meta.get('log', meta.get('domain'))}"
    kept[group] += 1
    return kept[group] <= limit


#: The corpus adapters, in report order.
ADAPTERS: Final[dict[str, CorpusAdapter]] = {
    "art": AtomicRedTeamAdapter(),
    "tldr": TldrAdapter(),
    "assistants": AssistantsAdapter(),
}


# --- Running and reporting ----------------------------------------------------------


def check_corpora(options: Options, adapters: Iterable[CorpusAdapter]) -> None:
    """Raise :class:`CorporaMissing` with a one-line message and hint if anything is absent."""
    root = options.corpora
    if not root.is_dir():
        raise CorporaMissing(
            f"corpora directory {root} not found; hint: the third-party corpora live beside the "
            f"repository in ../shared/corpora — pass --corpora DIR"
        )
    for adapter in adapters:
        for relative in adapter.required:
            if not (root / relative).exists():
                raise CorporaMissing(
                    f"{root / relative} not found ({adapter.name}); hint: pass --corpora DIR "
                    f"pointing at the shared corpora folder (see its README.md)"
                )


def run_quality(
    options: Options,
    names: Sequence[str] | None = None,
    config: Config | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build, replay and score every selected corpus; the report as a plain dict."""
    if options.min_severity not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {options.min_severity!r}; use one of {', '.join(SEVERITIES)}")
    chosen = {n: ADAPTERS[n] for n in (names or ADAPTERS)}
    check_corpora(options, chosen.values())
    config = config if config is not None else load_config()
    report: dict[str, Any] = {
        "corpora": str(options.corpora),
        "min_severity": options.min_severity,
        "ignored_rules": sorted(options.ignore_rules),
        "limit": options.limit,
        "split": options.split,
        "seed": options.seed,
        "agents_per_pool": options.agents,
        "detectors": {a.name: a.policy.mode for a in active_detectors(config)},
        "corpus": {},
    }
    total_events = 0
    total_seconds = 0.0
    total_cpu = 0.0
    started = time.perf_counter()
    for key, adapter in chosen.items():
        if progress:
            progress(f"building {adapter.name} sessions")
        for run in adapter.runs(options):
            if progress:
                progress(f"replaying {run.name}: {len(run.sessions)} sessions")
            scored = replay_and_score(run, config, options.min_severity, options.ignore_rules)
            report["corpus"][run.name] = {"corpus": key} | adapter.summarise(scored, options)
            total_events += scored.stats["events"]
            total_seconds += scored.stats["replay_seconds"]
            total_cpu += scored.stats["replay_cpu_seconds"]
    report["replay"] = {
        "events": total_events,
        "seconds": round(total_seconds, 3),
        "events_per_second": round(total_events / total_seconds) if total_seconds else None,
        "cpu_seconds": round(total_cpu, 3),
        "events_per_cpu_second": round(total_events / total_cpu) if total_cpu else None,
        "wall_seconds_total": round(time.perf_counter() - started, 1),
        "how": "agentwatch.ingest.replay.replay_file over one OTLP/JSON request per coding session and one "
        "native event per line for the assistants, default detectors, one process on this machine",
    }
    return report


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def render(report: dict[str, Any], out: Callable[[str], None] = print) -> None:
    """The report for people: recall per tactic, rule hits, flagged benign commands, misses."""
    sev = report["min_severity"]
    out(
        f"agentwatch quality bench — corpora {report['corpora']}, alert ≥ {sev}, limit {report['limit']}, "
        f"split {report['split']}"
        + (f", ignoring {', '.join(report['ignored_rules'])}" if report["ignored_rules"] else "")
    )
    runs = report["corpus"]
    art = [r for r in runs.values() if r["corpus"] == "art"]
    if art:
        out(
            "\nAtomic Red Team: recall per ATT&CK tactic (a technique counts under each of its tactics; "
            "* = target ≥ 90%)"
        )
        tactics = [t for t in TACTIC_ORDER if any(t in r["by_tactic"] for r in art)]
        header = f"  {'tactic':<24}" + "".join(f"{r['variant']:>22}" for r in art)
        out(header)
        for tactic in tactics:
            cells = []
            for r in art:
                cell = r["by_tactic"].get(tactic)
                cells.append(f"{cell['detected']:>4}/{cell['tests']:<4}{_pct(cell['recall']):>8}" if cell else "-")
            mark = "*" if tactic in TARGET_TACTICS else " "
            out(f"  {mark}{tactic:<23}" + "".join(f"{c:>22}" for c in cells))
        out(
            f"  {'all tests':<24}"
            + "".join(f"{r['detected']:>4}/{r['tests']:<4}{_pct(r['recall']):>8}".rjust(22) for r in art)
        )
        for r in art:
            out(f"\n  [{r['variant']}] detectors (tests detected): {_counts(r['by_detector'])}")
            out(f"  [{r['variant']}] rules (tests with a finding ≥ {sev} on own events): {_counts(r['by_rule'])}")
            out(
                f"  [{r['variant']}] events to detect: {r['events_to_detect']}; context steps flagged: "
                f"{r['context_flagged']} {_counts(r['context_by_detector'])}"
            )
            _render_run(r["run"], out)
            out(f"  [{r['variant']}] misses: {r['misses']} (showing {len(r['misses_shown'])})")
            for miss in r["misses_shown"]:
                out(f"    {miss['technique']:<10} {','.join(miss['tactics']):<40} {miss['name'][:60]}")
                out(f"               $ {miss['command']}")
    tldr = runs.get("tldr")
    if tldr:
        out(f"\ntldr-pages: example commands alerting ≥ {sev} on their own events")
        for label in ("benign", "offensive"):
            g = tldr[label]
            out(
                f"  {label:<10} {g['flagged']}/{g['commands']} commands ({_pct(g['rate'])}) from {g['pages']} pages; "
                f"sessions flagged {g['sessions_flagged']}/{g['sessions']}"
            )
            out(f"    detectors: {_counts(g['by_detector'])}")
            out(f"    rules: {_counts(g['by_rule'])}")
            for hit in g["flagged_shown"]:
                out(
                    f"    {hit['page']:<28} {','.join(f'{d}:{s}' for d, s in hit['detectors'].items()):<32} "
                    f"$ {hit['command']}"
                )
        _render_run(tldr["run"], out)
    assistants = runs.get("assistants")
    if assistants:
        out(f"\nTool-using assistants (ASB attacks and clean runs, τ-bench, τ²-bench; after warm-up): ≥ {sev}")
        for label, g in assistants["groups"].items():
            what = "attacker-tool calls detected" if g["kind"] == "attack" else "benign tool calls flagged"
            out(
                f"  {label:<30} {g['hit']:>4}/{g['items']:<5} {what} ({_pct(g['rate'])}); "
                f"sessions flagged {g['sessions_flagged']}/{g['sessions']}"
                + (f"; events to detect {g['events_to_detect']}" if g["kind"] == "attack" else "")
            )
            if g["kind"] == "attack" and g.get("repeat_misses"):
                first = g["first_calls"]
                share = first["hit"] / first["items"] if first["items"] else None
                out(
                    f"    of the misses, {g['repeat_misses']} repeat a tool already detected earlier in the same "
                    f"session (folded into that session's alert, not re-published); first calls "
                    f"{first['hit']}/{first['items']} ({_pct(share)})"
                )
            out(f"    detectors: {_counts(g['by_detector'])}")
            shown = g.get("misses_shown") if g["kind"] == "attack" else g.get("flagged_shown")
            if shown:
                out(f"    {'missed tools' if g['kind'] == 'attack' else 'flagged'}: {', '.join(shown)[:600]}")
        _render_run(assistants["run"], out)
    columns = [(name, run["by_rule"]) for name, run in runs.items() if "by_rule" in run]
    if tldr:
        columns += [(f"tldr_{g}", tldr[g]["by_rule"]) for g in ("benign", "offensive")]
    rules = sorted(
        {rule for _, counts in columns for rule in counts},
        key=lambda rule: -sum(counts.get(rule, 0) for _, counts in columns),
    )
    if rules:
        out(f"\nrules: items with a finding ≥ {sev} on their own events, per run")
        out(f"  {'rule':<44}" + "".join(f"{name:>20}" for name, _ in columns))
        for rule in rules:
            out(f"  {rule:<44}" + "".join(f"{counts.get(rule, 0):>20}" for _, counts in columns))
    r = report["replay"]
    out(
        f"\nreplay: {r['events']} events in {r['seconds']} s = {r['events_per_second']} events/s wall, "
        f"{r['events_per_cpu_second']} events per CPU-second ({r['how']}); whole bench {r['wall_seconds_total']} s"
    )


def _counts(counter: dict[str, int], top: int = 12) -> str:
    if not counter:
        return "none"
    items = list(counter.items())
    text = ", ".join(f"{k} {v}" for k, v in items[:top])
    return text + (f", … {len(items) - top} more" if len(items) > top else "")


def _render_run(stats: dict[str, Any], out: Callable[[str], None]) -> None:
    problems = []
    if stats["decode_errors"]:
        problems.append(f"decode errors {stats['decode_errors']}")
    if stats["plugin_errors"]:
        problems.append(f"detector errors {stats['plugin_errors']}")
    if not stats["instrumented_pass_matches"]:
        problems.append("instrumented pass published different alerts")
    out(
        f"    replay: {stats['sessions']} sessions, {stats['events']} events, {stats['alerts']} alerts "
        f"{stats['alerts_by_severity']}, {stats['events_per_second']} events/s"
        + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpora", type=Path, default=DEFAULT_CORPORA, help=f"third-party corpora folder (default: {DEFAULT_CORPORA})"
    )
    parser.add_argument(
        "--only",
        default=",".join(ADAPTERS),
        help=f"comma-separated corpora to run (default: all of {', '.join(ADAPTERS)})",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="quick run: the first N Atomic tests and N sampled tldr pages"
    )
    parser.add_argument(
        "--min-severity",
        choices=SEVERITIES,
        default="medium",
        help="an alert counts at or above this severity (default: medium)",
    )
    parser.add_argument("--seed", type=int, default=1234, help="shuffling/sampling seed (default: 1234)")
    parser.add_argument("--agents", type=int, default=8, help="developers (agent ids) per corpus pool (default: 8)")
    parser.add_argument("--tldr-per-session", type=int, default=10, help="tldr commands per session (default: 10)")
    parser.add_argument("--show-misses", type=int, default=20, metavar="N", help="missed tests to list per variant")
    parser.add_argument("--show-flagged", type=int, default=25, metavar="N", help="flagged tldr commands to list")
    parser.add_argument(
        "--config",
        default=None,
        help="agentwatch TOML config (default: the shipped defaults; AGENTWATCH_CONFIG is ignored)",
    )
    parser.add_argument(
        "--ignore-rule",
        action="append",
        default=[],
        metavar="DETECTOR/RULE",
        help="do not count this rule's findings (repeatable), e.g. privilege_changes/sudo",
    )
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default="all",
        help="all (default), or one half of each corpus: dev (Atomic techniques, tldr pages, ASB attacker tools "
        "and assistant tasks to write rules from) or holdout (the other half, to measure what generalises)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in ADAPTERS]
    if unknown:
        parser.error(f"unknown corpora {unknown}; known: {', '.join(ADAPTERS)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be ≥ 1")
    options = Options(
        corpora=args.corpora,
        limit=args.limit,
        min_severity=args.min_severity,
        seed=args.seed,
        agents=args.agents,
        tldr_per_session=args.tldr_per_session,
        show_misses=args.show_misses,
        show_flagged=args.show_flagged,
        ignore_rules=frozenset(args.ignore_rule),
        split=args.split,
    )
    saved = os.environ.pop("AGENTWATCH_CONFIG", None)  # the bench measures the defaults unless told otherwise
    try:
        config = load_config(args.config)
        report = run_quality(
            options, names, config, progress=None if args.json else lambda m: print(m, file=sys.stderr)
        )
    except (CorporaMissing, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if saved is not None:
            os.environ["AGENTWATCH_CONFIG"] = saved
    if args.json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        render(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
