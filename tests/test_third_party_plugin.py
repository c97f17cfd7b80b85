"""A third-party detector in its own package is picked up by installing it — nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example-detector"


def test_installed_example_package_is_discovered_and_its_fixture_passes(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    listed = subprocess.run(
        [sys.executable, "-m", "agentwatch.cli", "detectors", "list", "--json"],
        check=True,
        capture_output=True,
        env=env,
    )
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["paste_sites"]["module"] == "agentwatch_paste_sites.paste_sites"
    assert "secret_access" in rows  # built-ins come through the same entry point group
    tested = subprocess.run(
        [sys.executable, "-m", "agentwatch.cli", "detectors", "test", "paste_sites", "--json"],
        capture_output=True,
        env=env,
    )
    results = json.loads(tested.stdout)
    assert tested.returncode == 0, results
    assert len(results) == 7 and all(r["passed"] for r in results)


def test_without_installing_it_is_not_there() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "agentwatch.cli", "detectors", "list", "--json"], check=True, capture_output=True
    )
    assert "paste_sites" not in {row["name"] for row in json.loads(listed.stdout)}
