"""The ``agentwatch`` command line. Thin: parse, call the module that does the job, render.

Results are rich tables for people and ``--json`` for scripts; long commands show
progress on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import click
import msgspec
from rich.table import Table

from agentwatch import __version__, log_format
from agentwatch.cli import approvals as cli_approvals
from agentwatch.cli import store_commands
from agentwatch.cli.common import (
    _cell,
    _config,
    _control_signer,
    _engine,
    _incident_id,
    _kafka_security,
    _print_json,
    _redacted,
    err,
    invocation,
    lab_required,
    out,
)
from agentwatch.cli.user_errors import one_line, store_error
from agentwatch.config import WORKER_MODES, WorkerMode, load_config
from agentwatch.errors import ConfigError
from agentwatch.formats import BINARY_FORMATS, DECODERS


class _Commands(click.Group):
    """A user's mistake or a missing service is one line with a hint and a non-zero exit, not a
    traceback: configuration found unusable while a command runs (a detector's config, a rule
    file), no Kafka, a store that will not open, a port in use (:mod:`agentwatch.cli.user_errors`).
    With ``-v`` the traceback behind the line is printed too; an unknown failure keeps its own."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            _traceback_if_verbose(ctx, exc.__cause__ or exc.__context__)
            raise
        except ConfigError as exc:
            _traceback_if_verbose(ctx, exc)
            raise click.ClickException(f"{exc}; hint: fix the configuration (--config / AGENTWATCH_CONFIG)") from None
        except Exception as exc:
            message = one_line(exc, _store_url_or_none(ctx))
            if message is None:
                raise
            _traceback_if_verbose(ctx, exc)
            raise click.ClickException(message) from None


def _traceback_if_verbose(ctx: click.Context, exc: BaseException | None) -> None:
    obj = ctx.find_object(dict) or {}
    if exc is not None and obj.get("verbose", 0) > 0:
        import traceback

        err.print("".join(traceback.format_exception(exc)).rstrip(), markup=False, highlight=False, soft_wrap=True)


def _store_url_or_none(ctx: click.Context) -> str | None:
    try:
        return load_config((ctx.find_object(dict) or {}).get("config_path")).store_url
    except ConfigError:
        return None


@click.group(cls=_Commands)
@click.version_option(__version__, prog_name="agentwatch")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="AGENTWATCH_CONFIG",
    help="TOML config file (default: none, all defaults). Env: AGENTWATCH_CONFIG.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """agentwatch — behavioural monitoring and automated response for AI agents."""
    level = logging.WARNING - 10 * verbose
    log_format.install(max(level, logging.DEBUG))
    if verbose < 2:
        # kafka-python logs every refused connection while a broker starts or restarts;
        # agentwatch reports what matters (reconnects, failed deliveries) itself.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose


# -- replay -------------------------------------------------------------------------
@main.command()
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--alerts",
    "alerts_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write alert lines (JSON Lines); '-' for stdout.",
)
@click.option(
    "--format",
    "fmt",
    # One message per line: the binary OTLP encodings (otlp-proto, and otlp that may be it) cannot be lines.
    type=click.Choice(sorted(f for f in DECODERS if f not in BINARY_FORMATS)),
    default="native",
    show_default=True,
)
@click.option(
    "--dead-letters",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write rejected lines here as dead-letter records (default: count only).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def replay(
    ctx: click.Context, events: Path, alerts_path: Path, fmt: str, dead_letters: Path | None, as_json: bool
) -> None:
    """Run the detectors over EVENTS offline, in file order — the same code as `run`."""
    from agentwatch.detect.pipeline import build_pipeline
    from agentwatch.ingest.replay import replay_file

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
        "lines": stats.lines,
        "events": stats.events,
        "alerts": stats.alerts,
        "dead_letters": stats.dead_letters,
        "seconds": round(stats.seconds, 3),
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
    if stats.lines and stats.dead_letters == stats.lines and not stats.events:
        err.print(
            f"[red]every line ({stats.lines:,}) was dead-lettered: nothing was scored[/red]; hint: is the file "
            f"--format {fmt}? (known: {', '.join(sorted(DECODERS))}; --dead-letters FILE says why each line failed)",
            highlight=False,
        )
        sys.exit(1)


# -- run ----------------------------------------------------------------------------

#: ``--metrics-port`` and ``--metrics-host``, shared by the long-running processes (``run``, ``respond``).
metrics_port_option = click.option(
    "--metrics-port",
    type=int,
    default=None,
    envvar="AGENTWATCH_METRICS_PORT",
    help="Serve Prometheus /metrics on this port (on --metrics-host). Env: AGENTWATCH_METRICS_PORT.",
)
metrics_host_option = click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    envvar="AGENTWATCH_METRICS_HOST",
    help="Address /metrics binds to: loopback unless a scraper on another host needs it "
    "(0.0.0.0 in a container). Env: AGENTWATCH_METRICS_HOST.",
)


@main.command()
@click.option(
    "--bootstrap-servers",
    envvar="AGENTWATCH_BOOTSTRAP_SERVERS",
    required=True,
    help="Kafka HOST:PORT[,…]. Env: AGENTWATCH_BOOTSTRAP_SERVERS.",
)
@click.option(
    "--exit-on-idle",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Stop after this long without a record (default: run until signalled).",
)
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing agentwatch topics at start.",
)
@click.option("--quiet", is_flag=True, help="No progress line.")
@metrics_port_option
@metrics_host_option
@click.option(
    "--worker",
    type=click.Choice(WORKER_MODES),
    default=None,
    help="Who runs the non-urgent response steps: this process's worker thread (inline), "
    "`agentwatch respond` processes (external), or `agentwatch respond` keeps the incidents too and "
    "this process only publishes alerts and terminate_session (alerts). Default: [response] worker, else inline. "
    "Env: AGENTWATCH_RESPONSE_WORKER.",
)
@click.pass_context
def run(
    ctx: click.Context,
    bootstrap_servers: str,
    exit_on_idle: float | None,
    create_topics: bool,
    quiet: bool,
    metrics_port: int | None,
    metrics_host: str,
    worker: WorkerMode | None,
) -> None:
    """Consume, detect, respond: the monitor against Kafka."""
    from agentwatch.ingest.monitor_process import start_monitor

    config = _config(ctx)
    security = _kafka_security(config)
    _metrics_server(metrics_port, metrics_host)
    with _store_errors(config.store_url):
        monitor = start_monitor(
            bootstrap_servers,
            config,
            exit_on_idle_s=exit_on_idle,
            create_topics=create_topics,
            worker=worker,
            security=security,
            signer=_control_signer(config),
        )
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
    err.print(
        f"stopped: {stats.events:,} events, {stats.alerts_published:,} alerts published, "
        f"{stats.alerts_suppressed:,} duplicates suppressed, {stats.dead_letters:,} dead letters"
    )


# -- respond ------------------------------------------------------------------------
@main.command()
@click.option(
    "--bootstrap-servers",
    envvar="AGENTWATCH_BOOTSTRAP_SERVERS",
    default=None,
    help="Kafka HOST:PORT[,…], for the control commands steps send (a retried terminate_session, "
    "approved containment) and for --consume; needed when a playbook has such a step. "
    "Env: AGENTWATCH_BOOTSTRAP_SERVERS.",
)
@click.option(
    "--consume/--no-consume",
    default=None,
    help="Also keep the incidents: consume the alerts and input topics as group <group_id>-respond "
    "(beside `run --worker alerts`; run one such process). Default: on when [response] worker is "
    "alerts (env AGENTWATCH_RESPONSE_WORKER), else off.",
)
@metrics_port_option
@metrics_host_option
@click.pass_context
def respond(
    ctx: click.Context, bootstrap_servers: str | None, consume: bool | None, metrics_port: int | None, metrics_host: str
) -> None:
    """Run response steps claimed from the store until SIGTERM/SIGINT (beside `run --worker external|alerts`).

    Evidence, postmortems, approval requests, webhooks, retries and take-overs of steps whose
    process died; any number of `respond` processes may share one store. With --consume it also
    opens the incidents from the alerts topic (`run --worker alerts` writes none).
    """
    import signal
    import threading

    from agentwatch.ingest.monitor_process import KafkaSender
    from agentwatch.respond.worker_process import build_responder, run_worker, steps_that_send

    config = _config(ctx)
    if consume is None:
        consume = config.response.worker == "alerts"
    if consume and not bootstrap_servers:
        raise click.ClickException(
            "--consume reads the alerts and input topics; give --bootstrap-servers HOST:PORT "
            "(or AGENTWATCH_BOOTSTRAP_SERVERS)"
        )
    with _store_errors(config.store_url):
        sender = (
            KafkaSender(bootstrap_servers, _kafka_security(config), _control_signer(config))
            if bootstrap_servers
            else None
        )
        responder = build_responder(config, sender, session_commands=consume)
    senders = steps_that_send(responder.playbooks)
    if senders and not bootstrap_servers:
        responder.stop(drain=False)
        raise click.ClickException(
            f"playbook step {senders[0]} sends control commands; give --bootstrap-servers HOST:PORT "
            "(or AGENTWATCH_BOOTSTRAP_SERVERS)"
        )
    try:
        _metrics_server(metrics_port, metrics_host)
    except click.ClickException:
        responder.stop(drain=False)
        raise
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = responder.engine.url.render_as_string(hide_password=True)
    also = f", consuming {config.monitor.alerts_topic} as {config.monitor.group_id}-respond" if consume else ""
    err.print(f"responding: {len(responder.playbooks)} playbooks, store {store}{also}", markup=False, highlight=False)
    consumer_thread = None
    failed: list[BaseException] = []
    if consume:
        from agentwatch.respond.alert_consumer import AlertConsumer

        assert bootstrap_servers is not None
        consumer = AlertConsumer(bootstrap_servers, config.monitor, responder, security=_kafka_security(config))

        def consume_until_stopped() -> None:
            try:
                consumer.run(stop)
            except BaseException as exc:  # noqa: BLE001 - reported below; the process stops with it
                failed.append(exc)
                stop.set()

        consumer_thread = threading.Thread(target=consume_until_stopped, name="agentwatch-alerts", daemon=True)
        consumer_thread.start()
    stats = run_worker(responder, stop, beside=consumer_thread)
    if failed:
        raise click.ClickException(f"consuming the alerts failed: {str(failed[0])[:300]}")
    err.print(f"stopped: {stats.steps:,} steps run", highlight=False)


# -- rekey ------------------------------------------------------------------------
@main.command()
@click.option(
    "--bootstrap-servers",
    envvar="AGENTWATCH_BOOTSTRAP_SERVERS",
    required=True,
    help="Kafka HOST:PORT[,…]. Env: AGENTWATCH_BOOTSTRAP_SERVERS.",
)
@click.option(
    "--from",
    "source",
    default="otlp_logs.unkeyed",
    show_default=True,
    help="The topic the OpenTelemetry Collector's Kafka exporter writes.",
)
@click.option(
    "--to",
    "destination",
    default=None,
    help="The topic the monitor reads OTLP from. Default: the config's otlp input (otlp_logs).",
)
@click.option("--group-id", default="agentwatch-rekey", show_default=True)
@click.option("--exit-on-idle", type=float, default=None, metavar="SECONDS", help="Stop after this long idle.")
@metrics_port_option
@click.pass_context
def rekey(
    ctx: click.Context,
    bootstrap_servers: str,
    source: str,
    destination: str | None,
    group_id: str,
    exit_on_idle: float | None,
    metrics_port: int | None,
) -> None:
    """Re-key the Collector's OTLP batches by session.id, so every input topic is keyed by session.

    Each message (otlp_proto or otlp_json) becomes one message per session, keyed by its
    `session.id`; unreadable messages are forwarded unkeyed for the monitor to dead-letter.
    """
    import signal
    import threading

    from agentwatch.ingest.rekey import run_rekey

    if destination is None:
        otlp = [topic for topic, fmt in _config(ctx).monitor.inputs.items() if fmt.startswith("otlp")]
        if not otlp:
            raise click.UsageError("no otlp input topic in the config; give --to TOPIC")
        destination = otlp[0]
    if destination == source:
        raise click.UsageError(f"--from and --to are both {source!r}; re-keying a topic into itself loops")
    _metrics_server(metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    err.print(f"re-keying {source} → {destination} by session.id", markup=False, highlight=False)
    from kafka.errors import KafkaError

    try:
        stats = run_rekey(
            bootstrap_servers,
            source,
            destination,
            group_id=group_id,
            exit_on_idle_s=exit_on_idle,
            should_stop=stop.is_set,
            security=_kafka_security(_config(ctx)),
        )
    except KafkaError as exc:
        raise click.ClickException(
            f"Kafka at {bootstrap_servers[:200]!r}: {type(exc).__name__}; check --bootstrap-servers and that "
            f"{source[:200]!r} exists (the re-keyed batch was not committed: it is read again on restart)"
        ) from None
    err.print(
        f"stopped: {stats.messages_in:,} messages in, {stats.messages_out:,} out ({stats.unkeyed:,} unkeyed)",
        highlight=False,
    )


# -- simulate -----------------------------------------------------------------------
@main.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sessions", type=click.IntRange(1, 1_000_000), default=200, show_default=True)
@click.option("--attack-ratio", type=click.FloatRange(0, 1), default=0.25, show_default=True)
@click.option("--agent-types", default=None, help="Comma-separated agent types (default: the tuned set).")
@click.option("--held-out", is_flag=True, help="Use the agent types the detectors were not tuned on.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write events.jsonl and labels.jsonl here.",
)
@click.option(
    "--bootstrap-servers",
    envvar="AGENTWATCH_BOOTSTRAP_SERVERS",
    default=None,
    help="Also produce the events to Kafka (topic agent.audit, keyed by session).",
)
@click.option("--topic", default="agent.audit", show_default=True)
@click.option("--rate", type=float, default=None, help="Events per second when producing (default: max).")
@click.pass_context
def simulate(
    ctx: click.Context,
    seed: int,
    sessions: int,
    attack_ratio: float,
    agent_types: str | None,
    held_out: bool,
    out_dir: Path | None,
    bootstrap_servers: str | None,
    topic: str,
    rate: float | None,
) -> None:
    """Generate a seeded fleet of agent sessions with labelled attacks."""
    try:
        from agentwatch.lab import simulator
    except ModuleNotFoundError as exc:
        raise lab_required("simulate", exc) from None

    if out_dir is None and bootstrap_servers is None:
        raise click.UsageError("give --out DIR, --bootstrap-servers HOST:PORT, or both")
    security = _kafka_security(_config(ctx)) if bootstrap_servers is not None else None
    types: tuple[str, ...] = simulator.HELD_OUT_AGENT_TYPES if held_out else simulator.TUNED_AGENT_TYPES
    if agent_types:
        types = tuple(t.strip() for t in agent_types.split(","))
    try:
        fleet = simulator.simulate(seed=seed, sessions=sessions, attack_ratio=attack_ratio, agent_types=types)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    attacks = sum(1 for label in fleet.labels if label["label"] == "attack")
    if out_dir is not None:
        events_path, labels_path = simulator.write_fleet(fleet, out_dir)
        err.print(
            f"wrote {len(fleet.events):,} events to {events_path} and {len(fleet.labels):,} labels "
            f"({attacks} attack sessions) to {labels_path}"
        )
    if bootstrap_servers is not None:
        try:
            from agentwatch.lab.topic_io import publish_events
        except ModuleNotFoundError as exc:
            raise lab_required("simulate", exc) from None

        with _progress("producing", len(fleet.events)) as advance:
            sent = publish_events(bootstrap_servers, topic, fleet.events, rate=rate, on_sent=advance, security=security)
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

    try:
        from agentwatch.lab.broker import BrokerError, EmbeddedBroker
    except ModuleNotFoundError as exc:
        raise lab_required("broker", exc) from None
    from agentwatch.ingest.topics import all_topics, ensure_topics

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
@click.option("--rate", type=float, default=2000.0, show_default=True, help="Events per second produced.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def demo(ctx: click.Context, sessions: int, seed: int, rate: float, as_json: bool) -> None:
    """Embedded broker + simulated fleet + gateway + monitor, then flagged sessions vs. labels."""
    try:
        from agentwatch.lab.broker import BrokerError
        from agentwatch.lab.demo import run_demo
        from agentwatch.lab.evaluation_report import render_eval
    except ModuleNotFoundError as exc:
        raise lab_required("demo", exc) from None

    try:
        with _live_line(enabled=not as_json) as update:
            result = run_demo(_config(ctx), sessions=sessions, seed=seed, rate=rate, progress=update)
    except BrokerError as exc:  # no broker binary: the lab's extra is missing
        raise click.ClickException(str(exc)) from None
    if as_json:
        _print_json(result)
        return
    render_eval(out, result.report)
    out.print(
        f"\n{result.events_produced:,} events produced, {result.events_blocked:,} blocked after termination; "
        f"{result.alerts:,} alert messages, {result.dead_letters:,} dead letters"
    )
    out.print(
        f"{result.incidents} incidents, {result.sessions_terminated} sessions terminated; time to contain "
        f"(first malicious event produced → session stopped at the gateway): p50 {result.ttc_p50_s}s, "
        f"p90 {result.ttc_p90_s}s, p99 {result.ttc_p99_s}s"
    )
    import shlex

    agentwatch = f"AGENTWATCH_DATA_DIR={shlex.quote(result.data_dir)} {invocation()}"
    out.print("\nnext (copy and paste):", highlight=False)
    for what, command in (
        ("incidents", f"{agentwatch} incidents list"),
        ("one", f"{agentwatch} incidents show INCIDENT"),
        ("approve", f"{agentwatch} approve INCIDENT --action quarantine_agent --as alice"),
        ("deny", f"{agentwatch} deny INCIDENT --action revoke_credentials --as bob"),
        ("evidence", f"{agentwatch} evidence verify {shlex.quote(result.evidence_dir)}/BUNDLE"),
        ("audit", f"{agentwatch} audit verify"),
    ):
        out.print(f"  {what + ':':<11}{command}", markup=False, highlight=False, soft_wrap=True)
    out.print(
        f"  (INCIDENT: any id or unique prefix from the list; approvers alice and bob are in "
        f"{result.approvals_file}; postmortems in {result.postmortem_dir})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


# -- detectors ----------------------------------------------------------------------
@main.group()
def detectors() -> None:
    """Installed detector plugins: list them, run their fixtures."""


@detectors.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def detectors_list(ctx: click.Context, as_json: bool) -> None:
    """Every detector registered under the `agentwatch.detectors` entry point group."""
    from agentwatch.detect.detector_registry import discover_detectors
    from agentwatch.detect.policy import DetectorPolicy

    config = _config(ctx)
    rows: list[dict[str, Any]] = []
    for name, cls in discover_detectors().items():
        policy = config.detectors.get(name) or DetectorPolicy()
        rows.append(
            {
                "name": name,
                "module": cls.__module__,
                "categories": sorted(cls.categories),
                "mode": policy.mode if policy.enabled else "disabled",
                "cost_us": cls.cost_us,
                "summary": cls.summary,
            }
        )
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
    from agentwatch.detect.detector_fixtures import run_fixture
    from agentwatch.detect.detector_registry import discover_detectors

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
            table.add_row(
                _cell(r.detector),
                _cell(r.case),
                "[green]pass[/green]" if r.passed else "[red]FAIL[/red]",
                _cell(r.detail),
            )
        out.print(table)
        out.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


# -- eval ---------------------------------------------------------------------------
@main.command("eval")
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--min-severity",
    type=click.Choice(["low", "medium", "high", "critical"]),
    default="medium",
    show_default=True,
    help="An alert counts from this severity up.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def eval_command(ctx: click.Context, events: Path, labels: Path, min_severity: str, as_json: bool) -> None:
    """Replay EVENTS and score the alerts against LABELS: recall, false positives, time to detect."""
    import io

    from agentwatch.detect.pipeline import build_pipeline
    from agentwatch.ingest.replay import replay_file

    try:
        from agentwatch.lab.evaluation import evaluate
        from agentwatch.lab.evaluation_report import render_eval
    except ModuleNotFoundError as exc:
        raise lab_required("eval", exc) from None

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


# -- incidents, audit, evidence -------------------------------------------------------
@main.group()
def incidents() -> None:
    """Incidents in the store: list them, show one, resolve one."""


@incidents.command("list")
@click.option("--status", type=click.Choice(["open", "contained", "resolved"]), default=None)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def incidents_list(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """Newest first: severity, status, agent, session, alerts, open steps."""
    from agentwatch.events.audit_event import rfc3339_ms
    from agentwatch.respond.incident_queries import count_incidents, list_incidents, short_ids

    engine = _engine(ctx)
    with engine.connect() as conn:
        rows = list_incidents(conn, status, limit)
        total = count_incidents(conn, status) if len(rows) == limit else len(rows)
        cli_approvals.annotate_list(conn, rows)
        short = short_ids(conn, [row["incident_id"] for row in rows])
    for row in rows:
        row["short_id"] = short[row["incident_id"]]
    if as_json:
        _print_json(_redacted(rows))
        return
    store = engine.url.render_as_string(hide_password=True)
    if not rows:
        err.print(
            f"no incidents in the store {store}; hint: is it the one `run` writes to? (--config, "
            "AGENTWATCH_DATA_DIR, AGENTWATCH_STORE_URL)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    shown = f"showing {len(rows)} of {total:,}; --limit N for more" if total > len(rows) else str(len(rows))
    table = Table(title=f"incidents ({shown})", caption=_cell(f"store: {store}", 300))
    for column in (
        "incident",
        "opened",
        "severity",
        "status",
        "agent",
        "session",
        "detectors",
        "alerts",
        "open steps",
        "pending approvals",
    ):
        if column == "incident":  # never squeezed: the id is what the next command needs
            table.add_column(column, no_wrap=True, min_width=max(map(len, short.values()), default=8))
        else:
            table.add_column(column)
    table.add_column(column)
    for row in rows:
        table.add_row(
            row["short_id"],
            rfc3339_ms(row["opened_ms"]),
            row["severity"],
            row["status"],
            _cell(row["agent_id"]),
            _cell(row["session_id"]),
            ", ".join(row["detectors"]),
            str(row["alerts"]),
            str(row["open_steps"]),
            str(row["pending_approvals"]),
        )
    out.print(table)


@incidents.command("show")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def incidents_show(ctx: click.Context, incident_id: str, as_json: bool) -> None:
    """One incident: alerts, playbook steps and their state, timeline."""
    from agentwatch.events.audit_event import rfc3339_ms
    from agentwatch.respond.incident_queries import load_incident

    with _engine(ctx).connect() as conn:
        incident_id = _incident_id(conn, incident_id)
        record = load_incident(conn, incident_id)
        approval_rows = cli_approvals.approval_rows(conn, incident_id)
    if as_json:
        _print_json(_redacted({**msgspec.to_builtins(record), "approvals": approval_rows}))
        return
    out.print(f"[bold]{_cell(str(record.detector_context.get('title') or ''))}[/bold]", highlight=False)
    out.print(
        f"[bold]{record.incident_id}[/bold]  {record.severity}  {record.status}  agent {_cell(record.agent_id)}  "
        f"session {_cell(record.session_id)}  principal {_cell(record.principal or '—')}",
        highlight=False,
    )
    alerts = Table(title="alerts")
    for column in ("detector", "severity", "score", "rev", "event", "summary"):
        alerts.add_column(column)
    for a in record.alerts:
        alerts.add_row(a.detector, a.severity, f"{a.score:.2f}", str(a.revision), _cell(a.event_id), _cell(a.summary))
    out.print(alerts)
    steps = Table(title="playbook steps")
    for column in ("step", "action", "status", "result / error"):
        steps.add_column(column)
    for action in record.actions:
        detail = action.error or ", ".join(f"{k}={v}" for k, v in action.result.items())
        steps.add_row(action.step, action.action, action.status, _cell(detail))
    out.print(steps)
    if approval_rows:
        out.print(cli_approvals.approvals_table(approval_rows))
    timeline = Table(title="timeline")
    for column in ("time", "kind", "actor", "what"):
        timeline.add_column(column)
    for entry in record.timeline:
        timeline.add_row(rfc3339_ms(entry.ts_ms), entry.kind, _cell(entry.actor), _cell(entry.text))
    out.print(timeline)


@incidents.command("resolve")
@click.argument("incident_id")
@click.option("--as", "actor", required=True, help="Who resolves it (recorded in the audit log).")
@click.option("--note", default="resolved by a human", show_default=True)
@click.pass_context
def incidents_resolve(ctx: click.Context, incident_id: str, actor: str, note: str) -> None:
    """Close an incident (its session's events stop being journaled)."""
    import time

    from agentwatch.respond.incident_lifecycle import set_status

    with _engine(ctx).begin() as conn:
        incident_id = _incident_id(conn, incident_id)
        try:
            changed = set_status(conn, incident_id, "resolved", f"human:{actor}", int(time.time() * 1000), note)
        except KeyError:
            raise click.ClickException(f"no incident {incident_id}") from None
    err.print(f"{incident_id} {'resolved' if changed else 'was already resolved'}")


@main.group()
def audit() -> None:
    """The audit log: every record sealed with HMAC-SHA256 under a key kept outside the store."""


@audit.command("verify")
@click.option(
    "--expect-head",
    default=None,
    metavar="SEQ:HEX",
    envvar="AGENTWATCH_AUDIT_EXPECT_HEAD",
    help="A head kept from an earlier verify (or the anchor topic/log): fail unless the chain still "
    "holds it, so newest records cut off since are caught. Env: AGENTWATCH_AUDIT_EXPECT_HEAD.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit_verify(ctx: click.Context, expect_head: str | None, as_json: bool) -> None:
    """Walk the chain; exit 1 naming the first record altered, removed, reordered or not sealed with the key.

    Prints the head (SEQ:HEX of the newest record): keep it outside the store and pass it back
    with --expect-head to prove no newest records were cut off since.
    """
    from rich.markup import escape

    from agentwatch.respond.audit_log import AuditKeyError, parse_head, verify_chain

    if expect_head is not None:
        try:
            parse_head(expect_head)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expect-head") from None
    try:
        verdict = verify_chain(_engine(ctx), expect_head=expect_head)
    except AuditKeyError as exc:
        raise click.ClickException(
            f"{exc}; hint: set AGENTWATCH_AUDIT_KEY or AGENTWATCH_AUDIT_KEY_FILE to the key the monitor uses"
        ) from None
    if as_json:
        _print_json(
            {
                "ok": verdict.ok,
                "records": verdict.records,
                "problem": verdict.problem,
                "seq": verdict.seq,
                "head": verdict.head,
            }
        )
    elif verdict.ok:
        out.print(f"audit log intact: {verdict.records} records", highlight=False)
        if verdict.head:
            out.print(f"head: {verdict.head}", highlight=False, soft_wrap=True)
            out.print(
                "keep it outside the store: `agentwatch audit verify --expect-head HEAD` proves later that "
                "no newest records were cut off",
                highlight=False,
                soft_wrap=True,
            )
    else:
        err.print(f"[red]audit log broken[/red]: {escape(verdict.problem or '')}", highlight=False, soft_wrap=True)
    sys.exit(0 if verdict.ok else 1)


@audit.command("seal")
@click.option("--as", "actor", default=None, help="Who runs the migration (recorded; default: the OS user).")
@click.pass_context
def audit_seal(ctx: click.Context, actor: str | None) -> None:
    """Once, after upgrading from an unkeyed audit log: check it and re-seal every record with the key."""
    import getpass

    from agentwatch.respond.audit_log import AuditKeyError, seal_legacy

    try:
        result = seal_legacy(_engine(ctx), f"human:{actor or getpass.getuser()}")
    except AuditKeyError as exc:
        raise click.ClickException(f"{exc}; hint: set AGENTWATCH_AUDIT_KEY or AGENTWATCH_AUDIT_KEY_FILE") from None
    if not result.ok:
        raise click.ClickException(f"{result.problem}; nothing was changed")
    if result.resealed:
        out.print(f"re-sealed {result.resealed} records with the audit key", highlight=False)
    else:
        out.print("every record is already sealed with the key; nothing to do", highlight=False)


@main.group()
def evidence() -> None:
    """Evidence bundles."""


@evidence.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def evidence_verify(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Check a bundle against its manifest and the digest the store kept for its incident.

    Exit 0 intact; 1 naming every file (or the manifest, or the incident) that changed;
    2 when the store has no record of the bundle, so it cannot be verified.
    """
    from agentwatch.respond.evidence import bundle_claims, verify_recorded
    from agentwatch.respond.incident_queries import evidence_records

    config = _config(ctx)
    url = config.store_url
    hint = (
        "hint: run it with the --config, AGENTWATCH_DATA_DIR or AGENTWATCH_STORE_URL of the deployment "
        "that wrote the bundle"
    )
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        _cannot_verify(as_json, path, f"no store at {url.removeprefix('sqlite:///')}; {hint}")
    engine = _engine(ctx)
    incident_id, dirname = bundle_claims(path)
    with engine.connect() as conn:
        records = evidence_records(conn, [dirname] + ([incident_id] if incident_id else []))
    verdict = verify_recorded(path, records)
    if not verdict.known:
        store = engine.url.render_as_string(hide_password=True)
        _cannot_verify(
            as_json,
            path,
            f"the store at {store} has no record of this bundle (its manifest names "
            f"incident {incident_id or 'none'}); {hint}",
        )
    if as_json:
        _print_json(
            {
                "ok": verdict.ok,
                "problems": verdict.problems,
                "incident_id": verdict.incident_id,
                "digest": verdict.digest,
                "recorded_digest": verdict.recorded_digest,
            }
        )
    elif verdict.ok:
        out.print(
            f"{_cell(str(path), 300)}: intact (manifest sha256 {verdict.digest} is the one the store "
            f"recorded for incident {_cell(verdict.incident_id)})",
            highlight=False,
        )
    else:
        for problem in verdict.problems:
            err.print(f"{path}: {problem}", markup=False, highlight=False)
    sys.exit(0 if verdict.ok else 1)


def _cannot_verify(as_json: bool, path: Path, why: str) -> None:
    """Exit 2 with one line: the bundle can be neither confirmed nor called tampered."""
    if as_json:
        _print_json({"ok": False, "problems": [why], "incident_id": None, "digest": None, "recorded_digest": None})
    else:
        err.print(f"{path}: cannot verify: {why}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


# -- hook, serve ----------------------------------------------------------------------
@main.group()
def hook() -> None:
    """Agent-runtime hooks."""


@hook.command("claude-code")
@click.option(
    "--server",
    "server_url",
    envvar="AGENTWATCH_SERVER_URL",
    default=None,
    help="agentwatch serve's URL (default: read the store directly). Env: AGENTWATCH_SERVER_URL; "
    "the token comes from AGENTWATCH_API_TOKEN / AGENTWATCH_API_TOKEN_FILE.",
)
@click.option(
    "--fail",
    type=click.Choice(["closed", "open"]),
    envvar="AGENTWATCH_HOOK_FAIL",
    default="closed",
    show_default=True,
    help="When the session cannot be verified: block (closed) or allow (open). "
    "A terminated session is blocked either way.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    default=2.0,
    show_default=True,
    help="Seconds for the whole lookup (keep it under Claude Code's hook timeout).",
)
@click.pass_context
def hook_claude_code(
    ctx: click.Context, server_url: str | None, fail: Literal["closed", "open"], timeout: float
) -> None:
    """PreToolUse hook: exit 2 with the reason on stderr unless the session is verified active."""
    code, message = 2 if fail == "closed" else 0, ""
    try:  # one guard around everything: any way out but an explicit allow is the fail mode's answer
        from agentwatch.observe.api_token import load_api_token
        from agentwatch.respond.session_guard import MAX_HOOK_INPUT_BYTES, hook_decision, unverifiable

        try:
            token = load_api_token() if server_url else None
            store_url = "" if server_url else _config(ctx).store_url
        except (ConfigError, click.ClickException) as exc:  # the hook's line is capped: the fix, not the hint
            code, message = unverifiable(f"configuration: {str(exc).split('; hint:')[0]}", fail)
        else:
            stdin = sys.stdin.buffer.read(MAX_HOOK_INPUT_BYTES + 1)
            code, message = hook_decision(
                stdin, server_url=server_url, store_url=store_url, fail=fail, timeout_s=timeout, token=token
            )
    except BaseException as exc:  # noqa: BLE001 - the hook's last line of defence: the fail mode decides
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"internal error {type(exc).__name__}"
        code = 2 if fail == "closed" else 0
        message = f"agentwatch: cannot verify this session ({reason}); " + (
            "blocking (fail closed)" if fail == "closed" else "allowing (fail open)"
        )
    try:
        if message:
            sys.stderr.write(message.replace("\n", " ")[:400] + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: the exit code alone carries the decision
    sys.exit(code)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="AGENTWATCH_HOST")
@click.option("--port", type=int, default=8089, show_default=True, envvar="AGENTWATCH_PORT")
@click.option(
    "--bootstrap-servers",
    envvar="AGENTWATCH_BOOTSTRAP_SERVERS",
    default=None,
    help="Kafka, to publish approved control commands and Claude Code hook events from here. "
    "Env: AGENTWATCH_BOOTSTRAP_SERVERS.",
)
@click.option(
    "--public-metrics",
    is_flag=True,
    envvar="AGENTWATCH_PUBLIC_METRICS",
    help="Serve /metrics without the API token (it needs the token by default). Env: AGENTWATCH_PUBLIC_METRICS.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0.5, 300),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send a whole request (headers and body).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(8, 100_000),
    default=512,
    show_default=True,
    help="Open connections beyond this are answered 503 and closed.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    bootstrap_servers: str | None,
    public_metrics: bool,
    request_timeout: float,
    max_connections: int,
) -> None:
    """HTTP: /healthz, POST /slack/interactions, and with the API token /v1/sessions/<id>, /metrics and
    POST /v1/hooks/claude-code (Claude Code hooks: allow / ask / deny before the tool runs).

    The token comes from AGENTWATCH_API_TOKEN or AGENTWATCH_API_TOKEN_FILE; without one,
    only /healthz and the Slack endpoint are served. Runs the approval worker.
    """
    from agentwatch.observe.api_token import load_api_token
    from agentwatch.observe.hook_gate import HookGate, Publisher
    from agentwatch.observe.hook_tokens import load_hook_tokens
    from agentwatch.observe.server import ServeLimits, approval_service, make_server

    try:
        token = load_api_token()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    config, engine = _config(ctx), _engine(ctx)
    limits = ServeLimits(request_timeout_s=request_timeout, max_connections=max_connections)
    try:
        hook_tokens = load_hook_tokens()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    security = _kafka_security(config) if bootstrap_servers else None
    hooks = HookGate(config, Publisher(bootstrap_servers, config.hooks.topic, security=security), tokens=hook_tokens)
    service = approval_service(
        engine,
        config.data_dir.resolve(),
        config.monitor.control_topic,
        bootstrap_servers,
        security=security,
    )
    try:
        server = make_server(
            host, port, engine, service, token=token, public_metrics=public_metrics, limits=limits, hooks=hooks
        )
    except OSError as exc:
        service.stop()
        hooks.publisher.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if not hooks.publisher.enabled:
        err.print(
            "[yellow]no Kafka broker (--bootstrap-servers / AGENTWATCH_BOOTSTRAP_SERVERS): Claude Code hook events "
            f"are decided on but NOT published to {config.hooks.topic}; the monitor will not see them[/yellow]"
        )
    if token is None:
        err.print(
            "[yellow]no API token (AGENTWATCH_API_TOKEN / AGENTWATCH_API_TOKEN_FILE): serving only /healthz "
            "and /slack/interactions[/yellow]"
            + (" and /metrics" if public_metrics else "")
            + (f" and /v1/hooks/claude-code for {len(hook_tokens)} installation token(s)" if hook_tokens else "")
        )
    err.print(f"serving on http://{host}:{server.server_address[1]}", markup=False, highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# -- helpers ------------------------------------------------------------------------
def _metrics_server(port: int | None, host: str = "127.0.0.1") -> None:
    if port is None:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except (OSError, ValueError) as exc:
        raise click.ClickException(
            f"cannot serve metrics on {host}:{port}: {getattr(exc, 'strerror', None) or exc}; "
            "hint: pick a free port (--metrics-port) or an address of this host (--metrics-host)"
        ) from None


@contextlib.contextmanager
def _store_errors(url: str) -> Iterator[None]:
    """A store that cannot be opened (a malformed URL, an unknown driver, a server that refuses) is one line."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    try:
        yield
    except (ArgumentError, DBAPIError) as exc:
        raise click.ClickException(store_error(exc, url)) from exc


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
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
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


main.add_command(cli_approvals.approve)
main.add_command(cli_approvals.deny)
main.add_command(store_commands.store)

if __name__ == "__main__":
    main()
