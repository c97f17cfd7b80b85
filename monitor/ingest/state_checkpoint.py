"""Durable monitor state: sessions and positions per input partition, baselines per agent.

Session state — transactional with the consumed position
-------------------------------------------------------
After each batch has been delivered and its alerts recorded in the ledger, *one* store
transaction (:meth:`PartitionCheckpoints.save`) writes

* the pickled :class:`~agentwatch.detect.session_state.SessionState` (detector scratch included)
  of every session the batch touched, and deletes the ones it closed, keyed by
  ``(group_id, partition, session_id)``;
* the next offset to consume of every partition the batch read, keyed by
  ``(group_id, topic, partition)``;

and only then are the offsets committed to Kafka (for lag and tooling). The store, not
Kafka's committed offset, is the source of truth for the position: when a partition is
assigned — at start-up, after a crash, or handed over by a rebalance — its sessions are
loaded into the session table and the consumer *seeks* to the store's offset before its
first record is fetched (the rebalance listener runs inside ``poll``). State and position
therefore always agree: an event is counted in session state exactly once, whatever
happens between the transaction and the Kafka commit. (Alerts and control commands of a
batch re-read after a crash *before* the transaction are suppressed by the ledger and by
command ids.)

Each new owner bumps the partition's ``epoch``; a save checks the epochs of every
partition it owns and rolls back when one moved on — a monitor that lost its partitions
without noticing (a "zombie") cannot overwrite its successor's state.

Sessions live on one partition because events are keyed by ``session_id``; the input
topics are co-partitioned (same partition count, range assignment), so session rows are
keyed by the partition *number*.

Learned state — shared per agent by the whole group
---------------------------------------------------
Baselines that span sessions (novelty, rates, taint flow, session anomaly) span
partitions too. They are kept per key (an agent, a principal, the fleet) in the store:

* *written with every batch*, in the same transaction as the sessions and positions:
  the keys the batch changed (``export_learned``), each stamped with a group-wide
  sequence number (a counter row whose update serialises writers, so sequence order is
  commit order and a reader never skips a row). A row another monitor wrote since is
  first folded in (read-merge-write under that lock), so no monitor's learning is
  overwritten. A restarted monitor therefore resumes with the baselines exactly as of
  its last saved batch — a crash loses no learning, and counts none twice;
* *read every* ``state_sync_s``: the rows other monitors wrote since the last read are
  folded in with the detector's ``merge_learned`` — a join (union, max, better-trained
  wins) — so every monitor converges to the same baseline for every agent, however the
  agent's sessions are spread over partitions. The store plays the part of Kafka
  Streams' global table; ``state_sync_s`` bounds how stale a peer's view may be.

A detector without per-key hooks is saved whole (``checkpoint``) when its checkpoint
changed, and restored at start-up when its class and configuration are unchanged.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import msgspec
from kafka import TopicPartition
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from agentwatch.detect.detector_spec import Detector
from agentwatch.detect.session_state import SessionState
from agentwatch.observe import metrics
from agentwatch.store import (
    insert_ignoring_duplicates,
    learned_state,
    learned_state_clock,
    partition_positions,
    session_checkpoints,
    upsert,
)

if TYPE_CHECKING:
    from kafka import KafkaConsumer

    from agentwatch.detect.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Rows per statement when deleting closed sessions.
_DELETE_CHUNK = 500


class _Fenced(Exception):
    """A partition this monitor checkpoints was claimed by another monitor since."""


class PartitionCheckpoints:
    """Session state and consumed position per input partition, in the store."""

    def __init__(self, engine: Engine, group_id: str) -> None:
        self.engine = engine
        self.group_id = group_id

    def claim(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, tuple[int | None, int]]:
        """Take ownership: bump each partition's epoch; return its stored next offset and new epoch."""
        out: dict[TopicPartition, tuple[int | None, int]] = {}
        pp = partition_positions.c
        with self.engine.begin() as conn:
            for tp in sorted(tps):
                key = (pp.group_id == self.group_id, pp.topic == tp.topic, pp.partition == tp.partition)
                insert_ignoring_duplicates(
                    conn,
                    partition_positions,
                    [
                        {
                            "group_id": self.group_id,
                            "topic": tp.topic,
                            "partition": tp.partition,
                            "next_offset": None,
                            "epoch": 0,
                        }
                    ],
                )
                conn.execute(update(partition_positions).where(*key).values(epoch=pp.epoch + 1))  # row-locked
                row = conn.execute(select(pp.next_offset, pp.epoch).where(*key)).one()
                out[tp] = (row.next_offset, row.epoch)
        return out

    def load_sessions(self, partitions: Iterable[int]) -> list[tuple[int, str, bytes]]:
        """``(partition, session_id, pickled state)`` of every checkpointed session of ``partitions``."""
        wanted = sorted(set(partitions))
        if not wanted:
            return []
        sc = session_checkpoints.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(sc.partition, sc.session_id, sc.state).where(
                    sc.group_id == self.group_id, sc.partition.in_(wanted)
                )
            )
            return [(row.partition, row.session_id, row.state) for row in rows]

    def save(
        self,
        owned: dict[TopicPartition, tuple[int, int | None]],
        upserts: list[tuple[int, str, bytes]],
        deletes: list[tuple[int, str]],
        also: Callable[[Connection], object] | None = None,
    ) -> bool:
        """In one transaction: positions of every ``owned`` partition (``(epoch, next_offset)``),
        session rows written and deleted, and whatever ``also`` writes. ``False`` (nothing
        written) when fenced."""
        pp = partition_positions.c
        sc = session_checkpoints.c
        try:
            with self.engine.begin() as conn:
                for tp, (epoch, next_offset) in owned.items():
                    done = conn.execute(
                        update(partition_positions)
                        .where(
                            pp.group_id == self.group_id,
                            pp.topic == tp.topic,
                            pp.partition == tp.partition,
                            pp.epoch == epoch,
                        )
                        .values(next_offset=next_offset)
                    ).rowcount
                    if done != 1:
                        raise _Fenced(f"{tp.topic}[{tp.partition}]")
                for start in range(0, len(deletes), _DELETE_CHUNK):
                    chunk = deletes[start : start + _DELETE_CHUNK]
                    conn.execute(
                        delete(session_checkpoints).where(
                            sc.group_id == self.group_id, tuple_(sc.partition, sc.session_id).in_(chunk)
                        )
                    )
                upsert(
                    conn,
                    session_checkpoints,
                    [
                        {"group_id": self.group_id, "partition": p, "session_id": sid, "state": state}
                        for p, sid, state in upserts
                    ],
                    update=("state",),
                )
                if also is not None:
                    also(conn)
        except _Fenced as exc:
            log.error(
                "partition %s was claimed by another monitor; this batch's state is not saved "
                "(its new owner re-reads it)",
                exc,
            )
            return False
        return True


def _fingerprint(detector: Detector) -> str:
    """Class and configuration: a whole checkpoint is restored only into the same."""
    cls = type(detector)
    body = f"{cls.__module__}.{cls.__qualname__}:".encode() + msgspec.json.encode(detector.config)
    return hashlib.sha256(body).hexdigest()[:32]


def shares_learned(detector: Detector) -> bool:
    """Whether the detector shares learned state per key (overrides ``export_learned``)."""
    return type(detector).export_learned is not Detector.export_learned


class LearnedStateSync:
    """Learned detector state in the store, shared by every monitor of the group.

    Parameters
    ----------
    engine, group_id
        The store and the consumer group (baselines are per group).
    detectors
        ``{name: detector}`` of this monitor.
    """

    def __init__(self, engine: Engine, group_id: str, detectors: dict[str, Detector]) -> None:
        self.engine = engine
        self.group_id = group_id
        self.detectors = detectors
        #: This process; rows it wrote are not read back.
        self.writer = uuid.uuid4().hex
        self._last_seq = 0
        self._whole_saved: dict[str, bytes] = {}
        self.merged = 0
        self.written = 0

    def load(self) -> int:
        """At start-up: every stored row folded in (whole checkpoints restored); returns how many."""
        ls = learned_state.c
        count = 0
        with self.engine.connect() as conn:
            rows = conn.execute(select(ls.detector, ls.key, ls.state, ls.seq).where(ls.group_id == self.group_id))
            for row in rows:
                self._last_seq = max(self._last_seq, row.seq)
                count += self._apply(row.detector, row.key, row.state, at_start=True)
        self.merged += count
        return count

    def sync(self) -> None:
        """Fold in what peers wrote since the last sync, then write what changed here."""
        self.pull()
        with self.engine.begin() as conn:
            self.push(conn)

    def pull(self) -> int:
        """Fold in the rows other monitors wrote since the last pull; returns how many."""
        ls = learned_state.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ls.detector, ls.key, ls.state, ls.seq)
                .where(ls.group_id == self.group_id, ls.seq > self._last_seq, ls.writer != self.writer)
                .order_by(ls.seq)
            ).all()
        count = 0
        for row in rows:
            self._last_seq = max(self._last_seq, row.seq)
            count += self._apply(row.detector, row.key, row.state, at_start=False)
        self.merged += count
        return count

    def push(self, conn: Connection) -> int:
        """Within ``conn``'s transaction, write every key this monitor's detectors changed.

        The group's clock row is locked first; rows other monitors committed since the last
        pull are then folded in and the merged state written (read-merge-write under that
        lock), so no monitor's learning is overwritten by another's.
        """
        exports = self._exports()
        if not exports:
            return 0
        seq = _next_seq(conn, self.group_id)
        ls = learned_state.c
        foreign = conn.execute(
            select(ls.detector, ls.key, ls.state, ls.seq)
            .where(ls.group_id == self.group_id, ls.seq > self._last_seq, ls.writer != self.writer)
            .order_by(ls.seq)
        ).all()
        for row in foreign:
            self._last_seq = max(self._last_seq, row.seq)
            self.merged += self._apply(row.detector, row.key, row.state, at_start=False)
        if foreign:  # merging marked keys changed again where ours held more: take the merged state
            for name, changes in self._exports().items():
                exports.setdefault(name, {}).update(changes)
        rows = [
            {"group_id": self.group_id, "detector": name, "key": key, "state": state, "seq": seq, "writer": self.writer}
            for name, changes in exports.items()
            for key, state in changes.items()
        ]
        upsert(conn, learned_state, rows, update=("state", "seq", "writer"))
        self.written += len(rows)
        return len(rows)

    def _exports(self) -> dict[str, dict[str, bytes]]:
        out: dict[str, dict[str, bytes]] = {}
        for name, detector in self.detectors.items():
            try:
                if shares_learned(detector):
                    changes = detector.export_learned() or {}
                else:
                    whole = pickle.dumps((_fingerprint(detector), detector.checkpoint()), protocol=5)
                    changes = {} if self._whole_saved.get(name) == whole else {"": whole}
                    self._whole_saved[name] = whole
            except Exception as exc:  # noqa: BLE001 - a plugin's state must not stop the others'; counted, logged
                metrics.PLUGIN_ERRORS.labels(name, "export_learned").inc()
                log.error("detector %s failed to export its learned state; not saved", name, exc_info=exc)
                continue
            if changes:
                out[name] = changes
        return out

    def _apply(self, name: str, key: str, state: bytes, *, at_start: bool) -> int:
        detector = self.detectors.get(name)
        if detector is None:
            return 0
        try:
            if key == "":
                if not at_start or shares_learned(detector):
                    return 0
                fingerprint, blob = pickle.loads(state)  # noqa: S301 - written by this group to our store
                if fingerprint != _fingerprint(detector):
                    log.info("detector %s changed class or configuration; its saved state is not restored", name)
                    return 0
                if blob:
                    detector.restore(blob)
                self._whole_saved[name] = state
                return 1
            if not shares_learned(detector):
                return 0
            detector.merge_learned(key, state)
            return 1
        except Exception as exc:  # noqa: BLE001 - a plugin's state must not stop the others'; counted, logged
            metrics.PLUGIN_ERRORS.labels(name, "merge_learned").inc()
            log.error(
                "detector %s failed to load a saved state (key of %d chars); skipped", name, len(key), exc_info=exc
            )
            return 0


def _next_seq(conn: Connection, group_id: str) -> int:
    """Bump the group's learned-state clock; the row lock it takes serialises writers."""
    clock = learned_state_clock.c
    if conn.dialect.name in ("postgresql", "sqlite"):
        insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            insert(learned_state_clock)
            .values(group_id=group_id, seq=1)
            .on_conflict_do_update(index_elements=["group_id"], set_={"seq": learned_state_clock.c.seq + 1})
        )
    elif not conn.execute(
        update(learned_state_clock).where(clock.group_id == group_id).values(seq=clock.seq + 1)
    ).rowcount:
        conn.execute(learned_state_clock.insert().values(group_id=group_id, seq=1))
    return int(conn.execute(select(clock.seq).where(clock.group_id == group_id)).scalar_one())


class DurableState:
    """What ``run`` keeps in the store, and when: the glue between the loop and the store.

    The Kafka loop calls :meth:`assigned` / :meth:`revoked` from its rebalance listener,
    :meth:`note` for each record's events, :meth:`checkpoint` after a batch's effects are
    durable and before its Kafka commit, :meth:`maybe_sync` on every turn and
    :meth:`close` at a clean stop.
    """

    def __init__(self, engine: Engine, group_id: str, pipeline: Pipeline, *, sync_every_s: float = 10.0) -> None:
        self.partitions = PartitionCheckpoints(engine, group_id)
        self.learned = LearnedStateSync(engine, group_id, {d.name: d.detector for d in pipeline.detectors})
        self.pipeline = pipeline
        self.sync_every_s = sync_every_s
        pipeline.sessions.closed = []
        #: partition → (epoch, next offset) of what this monitor owns
        self._owned: dict[TopicPartition, tuple[int, int | None]] = {}
        #: session id → partition number, for sessions the current batch touched
        self._touched: dict[str, int] = {}
        self._next_sync = time.monotonic() + sync_every_s
        self._pickle_failures = 0

    # -- start-up and rebalances --------------------------------------------------------
    def start(self) -> None:
        """Load learned state (before the first poll)."""
        loaded = self.learned.load()
        if loaded:
            log.info("learned state: %d saved entries restored", loaded)

    def assigned(self, consumer: KafkaConsumer, tps: set[TopicPartition]) -> None:
        """Claim ``tps``, put their sessions in the table and seek to the stored positions."""
        claims = self.partitions.claim(tps)
        held = {tp.partition for tp in self._owned}
        fresh = {tp.partition for tp in tps} - held
        sessions = self.pipeline.sessions
        sessions.discard_partitions(fresh)  # stale copies from an earlier ownership
        states: list[SessionState] = []
        for partition, session_id, blob in self.partitions.load_sessions(fresh):
            try:
                state = pickle.loads(blob)  # noqa: S301 - written by this group to our store
            except Exception as exc:  # noqa: BLE001 - one unreadable row must not block the partition; logged
                log.error(
                    "checkpointed session (%d chars of id) of partition %d is unreadable; it starts over",
                    len(session_id),
                    partition,
                    exc_info=exc,
                )
                continue
            state.partition = partition
            states.append(state)
        sessions.restore(states)
        metrics.STATE_SESSIONS_RESTORED.inc(len(states))
        for tp, (next_offset, epoch) in claims.items():
            self._owned[tp] = (epoch, next_offset)
            if next_offset is not None:
                consumer.seek(tp, next_offset)
        log.info(
            "state: %d sessions restored for partitions %s; positions %s",
            len(states),
            sorted(fresh),
            sorted((tp.topic, tp.partition, off) for tp, (off, _) in claims.items()),
        )

    def revoked(self, tps: set[TopicPartition]) -> None:
        """Forget the sessions of partitions no longer owned (their state is already in the store)."""
        for tp in tps:
            self._owned.pop(tp, None)
        gone = {tp.partition for tp in tps} - {tp.partition for tp in self._owned}
        dropped = self.pipeline.sessions.discard_partitions(gone)
        self._touched.clear()
        if dropped:
            log.info("state: %d sessions of revoked partitions %s dropped from memory", dropped, sorted(gone))

    # -- each batch --------------------------------------------------------------------
    def note(self, partition: int, session_ids: Iterable[str]) -> None:
        """The sessions one record's events touched, and the partition it came from."""
        touched = self._touched
        for session_id in session_ids:
            touched[session_id] = partition

    def checkpoint(self, offsets: dict[TopicPartition, int]) -> bool:
        """Write the batch's session changes and positions in one transaction; ``False`` if fenced."""
        started = time.perf_counter()
        sessions = self.pipeline.sessions
        closed, sessions.closed = sessions.closed or [], []
        deletes = {(s.partition, s.session_id) for s in closed if s.partition >= 0}
        upserts: list[tuple[int, str, bytes]] = []
        for session_id, partition in self._touched.items():
            state = sessions.get(session_id)
            if state is None:
                deletes.add((partition, session_id))
                continue
            if state.partition != partition:
                if state.partition >= 0:
                    deletes.add((state.partition, session_id))
                state.partition = partition
            try:
                blob = pickle.dumps(state, protocol=5)
            except Exception as exc:  # noqa: BLE001 - one session's state must not stop the loop; counted, logged
                self._pickle_failures += 1
                metrics.BEST_EFFORT_FAILURES.labels("session_checkpoint").inc()
                if self._pickle_failures <= 5:
                    log.error(
                        "session state (%d chars of id) cannot be checkpointed; a crash would lose it",
                        len(session_id),
                        exc_info=exc,
                    )
                deletes.add((partition, session_id))  # a stale copy must not come back after a crash
                continue
            upserts.append((partition, session_id, blob))
        self._touched = {}
        deletes -= {(p, sid) for p, sid, _ in upserts}
        owned = dict(self._owned)
        for tp, next_offset in offsets.items():
            if tp in owned:
                owned[tp] = (owned[tp][0], next_offset)
        saved = self.partitions.save(owned, upserts, sorted(deletes), also=self.learned.push)
        if saved:
            self._owned = owned
        metrics.STATE_CHECKPOINT_SECONDS.observe(time.perf_counter() - started)
        return saved

    # -- learned state -----------------------------------------------------------------
    def maybe_sync(self) -> None:
        """Sync learned state when ``sync_every_s`` has passed (a failure is logged; retried next period)."""
        now = time.monotonic()
        if now < self._next_sync:
            return
        self._next_sync = now + self.sync_every_s
        try:
            self.learned.sync()
        except Exception as exc:  # noqa: BLE001 - baselines are retried next period; detection carries on
            metrics.BEST_EFFORT_FAILURES.labels("learned_state_sync").inc()
            log.error("learned state sync failed (retried in %.0fs): %s", self.sync_every_s, exc)

    def close(self) -> None:
        """At a clean stop: one last learned-state sync (merges since the last batch)."""
        self._next_sync = 0.0
        self.maybe_sync()
