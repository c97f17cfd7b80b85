"""Alerting rules: `promtool check rules` and the unit tests in prometheus/rules_test.yml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parent.parent / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: `apt-get install prometheus` (.ci/run does it)")
    return found


def test_rules_are_valid(promtool: str) -> None:
    done = subprocess.run([promtool, "check", "rules", "rules.yml"], cwd=PROMETHEUS, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    done = subprocess.run([promtool, "test", "rules", "rules_test.yml"], cwd=PROMETHEUS, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scrape_config_is_valid(promtool: str, tmp_path: Path) -> None:
    # The config reads serve's API token from a compose secret; check it whole (rule files
    # included) with that one path pointed at a real file.
    secret = "/run/secrets/agentwatch_api_token"
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert secret in config
    (tmp_path / "token").write_text("t" * 32)
    shutil.copy(PROMETHEUS / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(config.replace(secret, str(tmp_path / "token")))
    done = subprocess.run([promtool, "check", "config", "prometheus.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
