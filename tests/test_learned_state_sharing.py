"""Durable state in the store (issue 9, item 6), without Kafka: learned baselines shared
per agent — the built-in detectors' merges are joins, so two monitors that learned
different sessions of the same agents converge to the same baselines, and a monitor that
reloads the rows resumes where it was — and partition checkpoints fenced by epoch.

The store's part (rows, sequence numbers, read-merge-write) runs against SQLite and
PostgreSQL; the two-monitor test over Kafka is in ``test_state_checkpoint.py``.
"""

from __future__ import annotations

import pickle
import zlib
from typing import Any

from kafka import TopicPartition

from agentwatch.config import Config
from agentwatch.detect.pipeline import Pipeline, build_pipeline
from agentwatch.events.audit_event import from_mapping
from agentwatch.ingest.state_checkpoint import LearnedStateSync, PartitionCheckpoints, shares_learned
from agentwatch.lab import simulator
from agentwatch.store import open_store

SHARED = ("novelty", "rates", "session_anomaly", "taint_flow")


def fed_pipelines(parts: int = 2) -> list[Pipeline]:
    """One pipeline per monitor; each gets the sessions its partitions would hold."""
    fleet = simulator.simulate(seed=5, sessions=80)
    pipelines = [build_pipeline(Config()) for _ in range(parts)]
    for raw in fleet.events:
        event = from_mapping(raw)
        pipelines[zlib.crc32(event.session_id.encode()) % parts].process(event)
    for pipeline in pipelines:
        pipeline.drain()
    return pipelines


def detectors(pipeline: Pipeline) -> dict[str, Any]:
    return {d.name: d.detector for d in pipeline.detectors}


def baselines(detector: Any) -> dict[str, Any]:
    """What each built-in shares, as comparable values."""
    name = detector.name
    if name == "taint_flow":
        return {
            "fleet": set(detector._fleet),
            **{a: (f.sessions, f.total, f.transitions, set(f.destinations)) for a, f in detector._agents.items()},
        }
    if name == "novelty":
        return {
            "fleet": {k: set(v) for k, v in detector._fleet.items()},
            **{
                k: (p.sessions, p.events, {kind: set(i) for kind, i in p.items.items()}, p.rates, p.external_rates)
                for k, p in detector._profiles.items()
            },
        }
    if name == "rates":
        return {a: pickle.dumps(b) for a, b in [("fleet", detector._fleet), *detector._agents.items()]}
    return {
        a: pickle.dumps(m)
        for a, m in [
            ("fleet", (detector._fleet, detector.windows_learned)),
            *detector._agents.items(),
            *detector._pending.items(),
        ]
    }


def test_built_in_detectors_share_learned_state_per_key() -> None:
    shared = {d.name for d in build_pipeline(Config()).detectors if shares_learned(d.detector)}
    assert shared == set(SHARED)


def test_two_monitors_exchanging_rows_converge_to_the_same_baselines() -> None:
    one, two = (detectors(p) for p in fed_pipelines())
    assert any(baselines(one[n]) != baselines(two[n]) for n in SHARED), "nothing to converge"
    rows: dict[tuple[str, str], tuple[bytes, int]] = {}  # the store: last writer wins
    for _ in range(6):  # each round: both write what changed, then read the other's rows
        written = 0
        for me, peer in ((one, two), (two, one)):
            for name in SHARED:
                for key, state in (me[name].export_learned() or {}).items():
                    rows[(name, key)] = (state, id(me))
                    written += 1
            for (name, key), (state, writer) in rows.items():
                if writer != id(peer):
                    peer[name].merge_learned(key, state)
        if not written:
            break
    else:
        raise AssertionError("still writing after 6 rounds: the merges are not joins")
    for name in SHARED:
        assert baselines(one[name]) == baselines(two[name]), name


def test_a_restarted_monitor_reloads_its_baselines_from_the_store(tmp_path: Any) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    (before,) = fed_pipelines(parts=1)
    LearnedStateSync(engine, "g", detectors(before)).sync()
    after = build_pipeline(Config())
    sync = LearnedStateSync(engine, "g", detectors(after))
    assert sync.load() > 0
    for name in SHARED:
        assert baselines(detectors(after)[name]) == baselines(detectors(before)[name]), name


def test_writes_from_two_monitors_to_one_row_lose_nothing(store_url: str) -> None:
    """Read-merge-write: the second writer folds the first's row in before overwriting it."""
    engine = open_store(store_url)
    one, two = (detectors(p) for p in fed_pipelines())
    LearnedStateSync(engine, "g", {"taint_flow": one["taint_flow"]}).sync()
    LearnedStateSync(engine, "g", {"taint_flow": two["taint_flow"]}).sync()  # without having read one's rows
    reloaded = build_pipeline(Config())
    LearnedStateSync(engine, "g", detectors(reloaded)).load()
    fleet = detectors(reloaded)["taint_flow"]._fleet
    assert set(one["taint_flow"]._fleet) | set(two["taint_flow"]._fleet) <= set(fleet)


def test_a_monitor_that_lost_its_partition_cannot_overwrite_its_successors_state(store_url: str) -> None:
    engine = open_store(store_url)
    tp = TopicPartition("agent.audit", 3)
    old, new = PartitionCheckpoints(engine, "g"), PartitionCheckpoints(engine, "g")
    ((_, old_epoch),) = old.claim([tp]).values()
    assert old.save({tp: (old_epoch, 10)}, [(3, "s1", b"old")], [])
    ((offset, new_epoch),) = new.claim([tp]).values()
    assert offset == 10 and new_epoch == old_epoch + 1
    assert new.save({tp: (new_epoch, 12)}, [(3, "s1", b"new")], [])
    assert not old.save({tp: (old_epoch, 15)}, [(3, "s1", b"zombie")], [(3, "s2")])  # fenced: nothing written
    assert new.load_sessions([3]) == [(3, "s1", b"new")]
    assert new.claim([tp])[tp][0] == 12
