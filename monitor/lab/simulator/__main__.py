"""``python -m agentwatch.lab.simulator OUT_DIR [--seed N] [--sessions N] [--attack-ratio R] [--held-out]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from agentwatch.lab.simulator import HELD_OUT_AGENT_TYPES, TUNED_AGENT_TYPES, simulate, write_fleet


def main(argv: list[str] | None = None) -> int:
    """Generate a fleet and write ``events.jsonl`` / ``labels.jsonl`` into OUT_DIR."""
    ap = argparse.ArgumentParser(prog="python -m agentwatch.lab.simulator", description=__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--attack-ratio", type=float, default=0.25)
    ap.add_argument("--held-out", action="store_true", help="also include the held-out agent types")
    ns = ap.parse_args(argv)
    types = TUNED_AGENT_TYPES + HELD_OUT_AGENT_TYPES if ns.held_out else TUNED_AGENT_TYPES
    fleet = simulate(seed=ns.seed, sessions=ns.sessions, attack_ratio=ns.attack_ratio, agent_types=types)
    events, labels = write_fleet(fleet, ns.out_dir)
    attacks = sum(lb["label"] == "attack" for lb in fleet.labels)
    print(f"{len(fleet.events)} events -> {events}\n{len(fleet.labels)} sessions ({attacks} attacks) -> {labels}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
