"""Draw the SOC overview dashboard from live data into docs/soc-overview.png.

    pip install matplotlib && python docs/render_dashboard.py [--minutes 3]

Starts the live stack of tests/live_stack.py (embedded broker, `agentwatch run`,
`agentwatch serve`, a real Prometheus scraping both), plays simulated fleets through a
reference gateway for a few minutes, then runs the SOC dashboard's own panel queries
(grafana/dashboards/soc-overview.json) through Prometheus's range API and plots them
with matplotlib in the dashboard's layout. No Grafana binary is involved: this is the
same PromQL over the same live metrics, drawn by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grafana.build_dashboards import expand  # noqa: E402
from tests.live_stack import LiveStack  # noqa: E402


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "soc-overview.png")
    args = parser.parse_args()
    board = json.loads((ROOT / "grafana" / "dashboards" / "soc-overview.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        stack = LiveStack(Path(tmp), scrape_interval_s=2.0).start()
        try:
            started = time.time()
            seed = 1
            while time.time() - started < args.minutes * 60:
                stack.feed(sessions=120, seed=seed, rate=300.0, attack_ratio=0.15)
                seed += 1
            time.sleep(5)
            end = time.time()
            panels = [p for p in board["panels"] if all("expr" in t for t in p["targets"])]  # PromQL panels
            fig, axes = plt.subplots(3, 3, figsize=(18, 11))
            fig.suptitle(f"{board['title']} — live data, {args.minutes:g} minutes of simulated fleet", fontsize=14)
            for ax, panel in zip(axes.flat, panels, strict=False):
                ax.set_title(panel["title"], fontsize=10)
                for target in panel["targets"]:
                    if panel["type"] in ("bargauge", "stat"):
                        results = stack.query(expand(target["expr"]), at=end)
                        labels = [_legend(target["legendFormat"], r["metric"]) for r in results]
                        values = [float(r["value"][1]) for r in results]
                        ax.barh(labels, values)
                    else:
                        for series in stack.query_range(expand(target["expr"]), started, end, 5):
                            xs = [(float(t) - started) / 60 for t, _ in series["values"]]
                            ys = [float(v) for _, v in series["values"]]
                            ax.plot(xs, ys, label=_legend(target["legendFormat"], series["metric"]))
                        ax.set_xlabel("minutes")
                if panel["type"] not in ("bargauge", "stat") and ax.get_legend_handles_labels()[0]:
                    ax.legend(fontsize=7)
                ax.tick_params(labelsize=8)
                unit = panel["fieldConfig"]["defaults"]["unit"]
                if unit != "short":
                    ax.set_ylabel(unit, fontsize=8)
            fig.tight_layout()
            fig.savefig(args.out, dpi=80)
        finally:
            stack.stop()
    print(f"wrote {args.out}")
    return 0


def _legend(template: str, metric: dict[str, str]) -> str:
    out = template
    for key, value in metric.items():
        out = out.replace("{{" + key + "}}", value)
    return out or "value"


if __name__ == "__main__":
    sys.exit(main())
