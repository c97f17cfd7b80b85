"""The README's two commands on a fresh machine (issue 15): `make test` installs Prometheus and
promtool where it can and otherwise says in one line what to run; `make demo` ends with
commands that work (no bare `agentwatch` that is not on PATH), shows events blocked after
termination, and configures approvers so the README's approve/deny examples work on its incidents."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from agentwatch.cli import common
from agentwatch.cli.main import main
from agentwatch.config import Config
from agentwatch.lab.demo import run_demo

ROOT = Path(__file__).resolve().parent.parent
PREREQS = ROOT / "tools" / "test_prereqs.py"


def script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def prereqs(path_dirs: list[Path], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PREREQS)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.pathsep.join(map(str, path_dirs)), "HOME": os.environ.get("HOME", "/tmp"), **env},
    )


def test_make_test_checks_prerequisites_before_pytest() -> None:
    dry = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in dry.stdout.splitlines() if "test_prereqs.py" in line or "-m pytest" in line]
    assert [("test_prereqs.py" in line) for line in lines] == [True, False], dry.stdout


def test_without_prometheus_and_without_installing_it_says_what_to_run_in_one_line(tmp_path: Path) -> None:
    done = prereqs([tmp_path], AGENTWATCH_TEST_NO_INSTALL="1")
    assert done.returncode == 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "prometheus and promtool are not on PATH" in lines[0]
    assert "apt-get install prometheus" in lines[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the install path runs as root")
def test_as_root_with_apt_get_it_installs_the_package(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    chmod = shutil.which("chmod")
    # A stand-in apt-get: records its arguments; `install` provides the two binaries.
    script(
        bin_dir / "apt-get",
        f'echo "$@" >> {calls}\n'
        f'if [ "$1" = install ] || [ "$2" = install ]; then\n'
        f'  printf "#!/bin/sh\\n" > {bin_dir}/promtool; {chmod} +x {bin_dir}/promtool\n'
        f'  printf "#!/bin/sh\\n" > {bin_dir}/prometheus; {chmod} +x {bin_dir}/prometheus\n'
        "fi\n",
    )
    done = prereqs([bin_dir])
    assert done.returncode == 0, done.stderr
    assert "installing Debian's prometheus package with apt-get" in done.stderr and "failed" not in done.stderr
    assert calls.read_text().splitlines() == ["update -q", "install -y -q --no-install-recommends prometheus"]
    again = prereqs([bin_dir])  # now present: silent
    assert again.returncode == 0 and again.stderr == ""


def test_the_printed_command_is_the_one_that_ran_when_agentwatch_is_not_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    script(venv_bin / "agentwatch", "exit 0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(venv_bin / "agentwatch"), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert common.invocation() == ".venv/bin/agentwatch"
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin")
    assert common.invocation() == "agentwatch"


@pytest.mark.broker
def test_the_demo_blocks_events_after_termination_and_its_approvers_can_approve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AGENTWATCH_APPROVERS", "AGENTWATCH_ESCALATION_APPROVERS", "AGENTWATCH_APPROVALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AGENTWATCH_STORE_URL", raising=False)
    monkeypatch.delenv("AGENTWATCH_CONFIG", raising=False)
    config = msgspec.convert({"monitor": {"data_dir": str(tmp_path)}}, Config)
    result = run_demo(config, sessions=40, seed=7, rate=4000)
    assert result.sessions_terminated > 0
    assert result.events_blocked > 0  # a terminated session's next action is refused at the gateway
    assert "AGENTWATCH_APPROVERS" not in os.environ  # restored after the demo
    monkeypatch.setenv("AGENTWATCH_DATA_DIR", result.data_dir)
    runner = CliRunner()
    listed = msgspec.json.decode(runner.invoke(main, ["incidents", "list", "--json"]).stdout)
    pending = [row for row in listed if row["pending_approvals"]]
    assert pending, listed
    short = pending[0]["short_id"]
    approved = runner.invoke(main, ["approve", short, "--action", "quarantine_agent", "--as", "alice"])
    assert approved.exit_code == 0 and "approve recorded (1/2)" in approved.output, approved.output
    denied = runner.invoke(main, ["deny", short, "--action", "revoke_credentials", "--as", "bob"])
    assert denied.exit_code == 0 and "revoke_credentials denied" in denied.output, denied.output
    assert re.search(r"email = \"bob@", Path(result.approvals_file).read_text())
