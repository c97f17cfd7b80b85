"""The approval domain does not know Slack: Slack is one way to reach approvers, wired in by the worker.

Request, directory, votes, views, executor, sweeper and the runtime (and the gated-action contract
beside the action contract) must import neither ``agentwatch.approve.slack`` nor ``slack_sdk`` —
not directly, not lazily inside a function, not through another module.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

DOMAIN = [
    "agentwatch.approve.request",
    "agentwatch.approve.directory",
    "agentwatch.approve.votes",
    "agentwatch.approve.views",
    "agentwatch.approve.executor",
    "agentwatch.approve.sweeper",
    "agentwatch.approve.runtime",
    "agentwatch.respond.gated_action_spec",
]
SLACK = ("agentwatch.approve.slack", "slack_sdk")


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"{module} is not installed"
    return Path(spec.origin)


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    """Every module an ``import``/``from … import`` anywhere in the tree names (relative ones resolved)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


@pytest.mark.parametrize("module", DOMAIN)
def test_domain_module_source_never_imports_slack(module: str) -> None:
    tree = ast.parse(_source(module).read_text())
    bad = [n for n in _imported_names(tree, module.rpartition(".")[0]) if n.startswith(SLACK)]
    assert bad == [], f"{module} imports Slack: {bad}"


def test_importing_the_whole_domain_loads_no_slack_module() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {DOMAIN!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({SLACK!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_old_approvals_module_is_gone() -> None:
    """No shim: every caller imports the module that holds what it needs."""
    assert importlib.util.find_spec("agentwatch.approve.approvals") is None


class RecordingOutbox:
    """Any way of reaching approvers: the runtime only calls the :class:`Outbox` interface."""

    def __init__(self) -> None:
        self.flushes = 0
        self.synced: list[str] = []

    def flush(self) -> int:
        self.flushes += 1
        return 0

    def sync_incident(self, incident_id: str) -> int:
        self.synced.append(incident_id)
        return 1


def test_the_runtime_reaches_approvers_through_any_outbox(tmp_path: Path) -> None:
    from agentwatch.approve.runtime import ApprovalRuntime, Outbox
    from agentwatch.store import open_store
    from tests.test_approvals import APPROVER, Clock, open_incident, request, vote

    engine, clock = open_store(f"sqlite:///{tmp_path / 's.db'}"), Clock()
    incident_id = open_incident(engine)
    approval_id = request(engine, incident_id, clock, action="disable_tool")
    outbox = RecordingOutbox()
    checked: Outbox = outbox
    runtime = ApprovalRuntime(engine, tmp_path, "agent.control", outbox=checked, clock=clock)
    assert runtime.tick().synced == 0 and outbox.flushes == 1  # after-effects flush the outbox
    assert vote(engine, approval_id, APPROVER, clock=clock).accepted
    assert runtime.sync_incident(incident_id) == 1 and outbox.synced == [incident_id]
