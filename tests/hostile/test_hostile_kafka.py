"""≥ 10,000 hostile messages, both formats, through the real broker and the real ``run`` loop.

Asserts: the loop neither crashes nor hangs; every message is either processed (its
events counted) or dead-lettered — exactly one letter per bad message, matched by the
digest of the original, with a reason from the closed set; and peak memory stays bounded.
"""

from __future__ import annotations

import hashlib
import resource
import time
from collections import Counter

import msgspec
import pytest

from agentwatch.config import Config
from agentwatch.detect.pipeline import build_pipeline
from agentwatch.errors import DECODE_REASONS
from agentwatch.formats import get_decoder
from agentwatch.ingest.kafka_runner import KafkaMonitor, RunStats
from agentwatch.ingest.topics import all_topics, ensure_topics
from agentwatch.lab.broker import EmbeddedBroker
from agentwatch.lab.topic_io import publish_raw, read_topic
from agentwatch.store import AlertLedger, open_store
from tests.hostile.corpus import SMALL, Message, corpus

pytestmark = pytest.mark.broker

COPIES = 330  # x 31 small categories = 10,230 messages, plus the big ones
#: Peak resident memory the run may add (the 10,000-bad-record message alone once took 12.4 GiB).
MAX_RSS_GROWTH_MIB = 400


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _expected(message: Message) -> tuple[int, bool]:
    """(events, dead-lettered) — and check the message does what its category says."""
    if message.value is None or message.value == b"":
        result_events, errors = 0, ["invalid_json"]
    else:
        result = get_decoder(message.fmt)(message.value, 0)
        result_events, errors = len(result.events), [e.reason for e in result.errors]
    if message.expect == "events":
        assert result_events and not errors, (message.category, errors[:3])
    elif message.expect == "mixed":
        assert result_events and errors, message.category
    else:
        reason = message.expect.removeprefix("dead:")
        assert not result_events and Counter(errors).most_common(1)[0][0] == reason, (message.category, errors[:3])
    return result_events, bool(errors)


def test_the_run_loop_survives_10000_hostile_messages(broker: EmbeddedBroker, isolated_config: Config) -> None:
    bootstrap = broker.bootstrap_servers
    settings = isolated_config.monitor
    topics = {fmt: topic for topic, fmt in settings.inputs.items()}
    messages = corpus(COPIES)
    assert len(messages) >= 10_000 and {m.fmt for m in messages} == {"native", "otlp-json"}
    expected_events = 0
    bad_digests: Counter[str] = Counter()
    bad_by_category: Counter[str] = Counter()
    for message in messages:
        events, dead = _expected(message)
        expected_events += events
        if dead:
            bad_digests[hashlib.sha256(message.value or b"").hexdigest()] += 1
            bad_by_category[message.category] += 1

    ensure_topics(bootstrap, all_topics(settings), partitions=3)
    for fmt, topic in topics.items():
        publish_raw(
            bootstrap,
            topic,
            [(m.key, m.value) for m in messages if m.fmt == fmt],  # type: ignore[misc]
            max_request_size=8 * 1024 * 1024,
        )
    ledger = AlertLedger(open_store(isolated_config.store_url))
    peak = {"rss": _rss_mib()}

    def on_batch(stats: RunStats) -> None:
        peak["rss"] = max(peak["rss"], _rss_mib())

    monitor = KafkaMonitor(
        bootstrap, settings, build_pipeline(isolated_config), ledger, exit_on_idle_s=3.0, on_batch=on_batch
    )
    baseline_rss, baseline_max = _rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    stats = monitor.run()  # returns: it neither crashed nor hung
    seconds = time.monotonic() - started
    max_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline_max

    letters = [msgspec.json.decode(v) for v in read_topic(bootstrap, settings.dlq_topic, timeout_s=60)]
    assert stats.messages == len(messages)
    assert stats.events == expected_events
    assert stats.dead_letters == len(letters) == sum(bad_digests.values())  # one per bad message, exactly
    assert Counter(letter["value_sha256"] for letter in letters) == bad_digests
    for letter in letters:
        assert letter["reason"] in DECODE_REASONS and set(letter["reasons"]) <= DECODE_REASONS
        assert len(letter["details"]) <= 10 and len(msgspec.json.encode(letter)) < 1_000_000
    assert not monitor.pipeline.plugin_errors, monitor.pipeline.plugin_errors
    growth = peak["rss"] - baseline_rss
    print(
        f"\nhostile corpus: {len(messages):,} messages ({len(SMALL)} small categories x {COPIES} + big ones), "
        f"{sum(bad_digests.values()):,} bad -> {len(letters):,} dead letters "
        f"({len(letters) / sum(bad_digests.values()):.2f} per bad message, "
        f"{len(letters) / len(messages):.3f} per hostile message), {stats.events:,} events, "
        f"run {seconds:.1f}s, RSS growth during run {growth:.0f} MiB (ru_maxrss growth {max_growth:.0f} MiB)"
    )
    assert max(growth, max_growth) < MAX_RSS_GROWTH_MIB
