"""The ``agentwatch`` command line. Thin: parse, call the module that does the job, render.

Results are rich tables for people and ``--json`` for scripts; long commands show
progress on stderr.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from monitor import __version__
from monitor.config import Config, load_config
from monitor.errors import ConfigError
from monitor.formats import DECODERS

out = Console()
err = Console(stderr=True)


def _config(ctx: click.Context) -> Config:
    try:
        return load_config(ctx.obj.get("config_path"))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(msgspec.json.encode(obj).decode() + "\n")


@click.group()
@click.version_option(__version__, prog_name="agentwatch")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="AGENTWATCH_CONFIG",
              help="TOML config file (default: none, all defaults). Env: AGENTWATCH_CONFIG.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """agentwatch — behavioural monitoring and automated response for AI agents."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        logging.getLogger("kafka").setLevel(logging.ERROR)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


# -- replay -------------------------------------------------------------------------
@main.command()
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--alerts", "alerts_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write alert lines (JSON Lines); '-' for stdout.")
@click.option("--format", "fmt", type=click.Choice(sorted(DECODERS)), default="native", show_default=True)
@click.option("--dead-letters", type=click.Path(dir_okay=False, path_type=Path),
              help="Write rejected lines here as dead-letter records (default: count only).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def replay(ctx: click.Context, events: Path, alerts_path: Path, fmt: str, dead_letters: Path | None,
           as_json: bool) -> None:
    """Run the detectors over EVENTS offline, in file order — the same code as `run`."""
    from monitor.pipeline import build_pipeline
    from monitor.replay import replay_file

    pipeline = build_pipeline(_config(ctx))
    size = events.stat().st_size
    alerts_out = sys.stdout.buffer if str(alerts_path) == "-" else open(alerts_path, "wb")
    dlq_out = open(dead_letters, "wb") if dead_letters else None
    try:
        with _progress("replaying", size, enabled=not as_json and str(alerts_path) != "-") as advance:
            stats = replay_file(events, alerts_out, pipeline, fmt, dlq_out, on_progress=advance)
    finally:
        if alerts_out is not sys.stdout.buffer:
            alerts_out.close()
        if dlq_out is not None:
            dlq_out.close()
    summary = {
        "lines": stats.lines, "events": stats.events, "alerts": stats.alerts,
        "dead_letters": stats.dead_letters, "seconds": round(stats.seconds, 3),
        "events_per_second": round(stats.events / stats.seconds) if stats.seconds else None,
        "plugin_errors": {f"{d}.{h}": n for (d, h), n in pipeline.plugin_errors.items()},
        "shadow_alerts": dict(pipeline.shadow_alerts),
    }
    if as_json:
        _print_json(summary)
    else:
        _summary_table("replay", summary)
    if pipeline.plugin_errors:
        err.print(f"[red]detectors raised {sum(pipeline.plugin_errors.values())} times — see the log[/red]")


# -- run ----------------------------------------------------------------------------
@main.command()
@click.option("--bootstrap-servers", envvar="AGENTWATCH_BOOTSTRAP_SERVERS", required=True,
              help="Kafka HOST:PORT[,…]. Env: AGENTWATCH_BOOTSTRAP_SERVERS.")
@click.option("--exit-on-idle", type=float, default=None, metavar="SECONDS",
              help="Stop after this long without a record (default: run until signalled).")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True,
              help="Create missing agentwatch topics at start.")
@click.option("--quiet", is_flag=True, help="No progress line.")
@click.pass_context
def run(ctx: click.Context, bootstrap_servers: str, exit_on_idle: float | None, create_topics: bool,
        quiet: bool) -> None:
    """Consume, detect, respond: the monitor against Kafka."""
    from monitor.monitor_process import start_monitor

    config = _config(ctx)
    monitor = start_monitor(bootstrap_servers, config, exit_on_idle_s=exit_on_idle, create_topics=create_topics)
    monitor.install_signal_handlers()
    if quiet:
        stats = monitor.run()
    else:
        with _live_line() as update:
            monitor.on_batch = lambda s: update(
                f"events {s.events:,}  alerts {s.alerts_published:,}  dead letters {s.dead_letters:,}  "
                f"batches {s.batches:,}"
            )
            stats = monitor.run()
    err.print(f"stopped: {stats.events:,} events, {stats.alerts_published:,} alerts published, "
              f"{stats.alerts_suppressed:,} duplicates suppressed, {stats.dead_letters:,} dead letters")


# -- simulate -----------------------------------------------------------------------
@main.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sessions", type=click.IntRange(1, 1_000_000), default=200, show_default=True)
@click.option("--attack-ratio", type=click.FloatRange(0, 1), default=0.25, show_default=True)
@click.option("--agent-types", default=None, help="Comma-separated agent types (default: the tuned set).")
@click.option("--held-out", is_flag=True, help="Use the agent types the detectors were not tuned on.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write events.jsonl and labels.jsonl here.")
@click.option("--bootstrap-servers", envvar="AGENTWATCH_BOOTSTRAP_SERVERS", default=None,
              help="Also produce the events to Kafka (topic agent.audit, keyed by session).")
@click.option("--topic", default="agent.audit", show_default=True)
@click.option("--rate", type=float, default=None, help="Events per second when producing (default: max).")
def simulate(seed: int, sessions: int, attack_ratio: float, agent_types: str | None, held_out: bool,
             out_dir: Path | None, bootstrap_servers: str | None, topic: str, rate: float | None) -> None:
    """Generate a seeded fleet of agent sessions with labelled attacks."""
    from monitor import simulator

    if out_dir is None and bootstrap_servers is None:
        raise click.UsageError("give --out DIR, --bootstrap-servers HOST:PORT, or both")
    types = simulator.HELD_OUT_AGENT_TYPES if held_out else simulator.TUNED_AGENT_TYPES
    if agent_types:
        types = tuple(t.strip() for t in agent_types.split(","))
    try:
        fleet = simulator.simulate(seed=seed, sessions=sessions, attack_ratio=attack_ratio, agent_types=types)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    attacks = sum(1 for label in fleet.labels if label["label"] == "attack")
    if out_dir is not None:
        events_path, labels_path = simulator.write_fleet(fleet, out_dir)
        err.print(f"wrote {len(fleet.events):,} events to {events_path} and {len(fleet.labels):,} labels "
                  f"({attacks} attack sessions) to {labels_path}")
    if bootstrap_servers is not None:
        from monitor.topic_io import publish_events

        with _progress("producing", len(fleet.events)) as advance:
            sent = publish_events(bootstrap_servers, topic, fleet.events, rate=rate, on_sent=advance)
        err.print(f"produced {sent:,} events to {topic}")


# -- broker -------------------------------------------------------------------------
@main.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Loopback port (0 = any free port).")
@click.option("--create-topics/--no-create-topics", default=True, show_default=True)
@click.pass_context
def broker(ctx: click.Context, port: int, create_topics: bool) -> None:
    """Run the embedded Kafka-protocol broker (Tansu, in memory) on loopback until Ctrl-C."""
    import signal
    import threading

    from monitor.broker import BrokerError, EmbeddedBroker
    from monitor.topics import all_topics, ensure_topics

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with EmbeddedBroker(port=port) as embedded:
            if create_topics:
                ensure_topics(embedded.bootstrap_servers, all_topics(_config(ctx).monitor))
            err.print(f"broker listening on [bold]{embedded.bootstrap_servers}[/bold] (memory storage; Ctrl-C stops)")
            while not stop.wait(0.5):
                if not embedded.running:
                    raise click.ClickException(f"broker exited: {embedded.log_tail()}")
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    err.print("broker stopped")


# -- demo ---------------------------------------------------------------------------
@main.command()
@click.option("--sessions", type=click.IntRange(10, 100_000), default=300, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rate", type=float, default=4000.0, show_default=True, help="Events per second produced.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def demo(ctx: click.Context, sessions: int, seed: int, rate: float, as_json: bool) -> None:
    """Embedded broker + simulated fleet + monitor, then flagged sessions vs. labels."""
    from monitor.demo import run_demo

    with _live_line(enabled=not as_json) as update:
        result = run_demo(_config(ctx), sessions=sessions, seed=seed, rate=rate, progress=update)
    if as_json:
        _print_json(result)
        return
    from monitor.report import render_eval

    render_eval(out, result.report)
    out.print(f"\n{result.events:,} events, {result.alerts:,} alert messages on {result.alerts_topic}, "
              f"{result.dead_letters:,} dead letters; monitor throughput {result.events_per_second:,.0f} events/s")


# -- detectors ----------------------------------------------------------------------
@main.group()
def detectors() -> None:
    """Installed detector plugins: list them, run their fixtures."""


@detectors.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def detectors_list(ctx: click.Context, as_json: bool) -> None:
    """Every detector registered under the `agentwatch.detectors` entry point group."""
    from monitor.plugins import discover_detectors
    from monitor.policy import DetectorPolicy

    config = _config(ctx)
    rows = []
    for name, cls in discover_detectors().items():
        policy = config.detectors.get(name) or DetectorPolicy()
        rows.append({
            "name": name, "module": cls.__module__, "categories": sorted(cls.categories),
            "mode": policy.mode if policy.enabled else "disabled", "cost_us": cls.cost_us, "summary": cls.summary,
        })
    if as_json:
        _print_json(rows)
        return
    table = Table(title="detectors")
    for column in ("name", "mode", "categories", "cost µs", "summary"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["mode"], ", ".join(row["categories"]), f"{row['cost_us']:g}", row["summary"])
    out.print(table)


@detectors.command("test")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True)
def detectors_test(names: tuple[str, ...], as_json: bool) -> None:
    """Run each detector's fixture (positives and negatives); exit 1 on any failure."""
    from monitor.fixtures import run_fixture
    from monitor.plugins import discover_detectors

    available = discover_detectors()
    unknown = set(names) - set(available)
    if unknown:
        raise click.UsageError(f"unknown detectors {sorted(unknown)}; installed: {sorted(available)}")
    results = [r for name in (names or available) for r in run_fixture(available[name])]
    failed = [r for r in results if not r.passed]
    if as_json:
        _print_json(results)
    else:
        table = Table(title="detector fixtures")
        for column in ("detector", "case", "result", "detail"):
            table.add_column(column)
        for r in results:
            table.add_row(r.detector, r.case, "[green]pass[/green]" if r.passed else "[red]FAIL[/red]", r.detail,
                          markup=True)
        out.print(table)
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


# -- eval ---------------------------------------------------------------------------
@main.command("eval")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--min-severity", type=click.Choice(["low", "medium", "high", "critical"]), default="medium",
              show_default=True, help="An alert counts from this severity up.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_command(ctx: click.Context, events: Path, labels: Path, min_severity: str, as_json: bool) -> None:
    """Replay EVENTS and score the alerts against LABELS: recall, false positives, time to detect."""
    import io

    from monitor.evaluation import evaluate
    from monitor.pipeline import build_pipeline
    from monitor.replay import replay_file
    from monitor.report import render_eval

    pipeline = build_pipeline(_config(ctx))
    buffer = io.BytesIO()
    replay_file(events, buffer, pipeline)
    alerts = [msgspec.json.decode(line) for line in buffer.getvalue().splitlines()]
    event_rows = [msgspec.json.decode(line) for line in events.read_bytes().splitlines() if line.strip()]
    label_rows = [msgspec.json.decode(line) for line in labels.read_bytes().splitlines() if line.strip()]
    report = evaluate(event_rows, label_rows, alerts, min_severity=min_severity)
    if as_json:
        _print_json(report)
    else:
        render_eval(out, report)


# -- helpers ------------------------------------------------------------------------
def _summary_table(title: str, summary: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
    out.print(table)


class _progress:  # noqa: N801 - used as a context manager like a function
    """A rich progress bar on stderr; yields ``advance(completed)``."""

    def __init__(self, what: str, total: int, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.enabled = enabled and err.is_terminal
        self.progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err, transient=True)
        self.what, self.total = what, total

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self.enabled:
            return lambda completed: None
        self.progress.start()
        task = self.progress.add_task(self.what, total=self.total)
        return lambda completed: self.progress.update(task, completed=completed)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()


class _live_line:  # noqa: N801
    """One status line on stderr, updated in place (printed plainly when not a TTY)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.status = err.status("starting…") if enabled and err.is_terminal else None
        self._last = 0.0

    def __enter__(self):  # type: ignore[no-untyped-def]
        import time

        if self.status is not None:
            self.status.start()
            return lambda text: self.status.update(text)  # type: ignore[union-attr]

        def plain(text: str) -> None:
            now = time.monotonic()
            if self.enabled and now - self._last >= 2.0:
                self._last = now
                err.print(text, markup=False, highlight=False)

        return plain

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()


if __name__ == "__main__":
    main()
