"""Rendering evaluation results as tables a person can read."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from agentwatch.lab.evaluation import EvalReport


def render_eval(console: Console, report: EvalReport) -> None:
    """Per-category recall and time to detect, then the benign false-positive line."""
    table = Table(title=f"attack sessions detected (alert ≥ {report.min_severity})")
    for column in (
        "category",
        "sessions",
        "detected",
        "recall",
        "≤2 events",
        "TTD events p50",
        "TTD events max",
        "TTD s p50",
    ):
        table.add_column(column, justify="left" if column == "category" else "right")
    for row in [*report.categories, report.overall]:
        style = "bold" if row.category == "overall" else None
        table.add_row(
            row.category,
            str(row.sessions),
            str(row.detected),
            f"{row.recall:.1%}",
            str(row.within_two_events),
            _fmt(row.ttd_events_median),
            _fmt(row.ttd_events_max),
            _fmt(row.ttd_seconds_median),
            style=style,
        )
    console.print(table)
    console.print(
        f"benign sessions flagged: {report.benign_flagged} of {report.benign_sessions} "
        f"({report.false_positive_rate:.2%})"
        + (
            f" — by {', '.join(f'{k} ×{v}' for k, v in report.detectors_on_benign.items())}"
            if report.detectors_on_benign
            else ""
        )
    )


def _fmt(value: float | int | None) -> str:
    return "—" if value is None else f"{value:g}"
