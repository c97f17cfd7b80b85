"""The ``destructive_ops`` rule pack: fixtures, contract, tricky negatives, config, one judgement per action."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from agentwatch.detect.detector_fixtures import fixture_path, load_cases
from agentwatch.detectors.destructive_ops import DestructiveOps, DestructiveOpsConfig
from agentwatch.detectors.rule_pack import RuleOverride
from tests.rule_pack_helpers import bash
from tests.rule_pack_helpers import run as _run
from tests.rule_pack_helpers import top as _top


def _rules(det: DestructiveOps, *raw: dict[str, Any]) -> set[str]:
    return {f.rule for f in _run(det, *raw)}


# -- contract and fixtures -----------------------------------------------------------
def test_fixture_shape() -> None:
    cases = load_cases(fixture_path(DestructiveOps))
    positives = [c for c in cases if c.expect == "alert"]
    negatives = [c for c in cases if c.expect == "none"]
    assert len(positives) >= 20 and len(negatives) >= 8
    assert all(c.on_event and c.trigger_rules for c in positives)  # every positive names the rules it pins
    assert all(c.trigger_rules == [] for c in negatives)
    assert any("hostile" in c.case for c in negatives)
    known = {rule.id for rule in DestructiveOps().rules}
    pinned = {r for c in cases for r in c.trigger_rules or ()}
    assert pinned <= known
    assert len(pinned) >= 20  # most rules have a positive case


def test_findings_are_well_formed() -> None:
    det = DestructiveOps()
    for case in load_cases(fixture_path(DestructiveOps)):
        for finding in _run(det, *case.events):
            assert 0.0 < finding.score <= 1.0
            assert finding.category == "destructive"
            assert finding.rule and finding.event_ids
            assert finding.reason.startswith(f"{finding.rule}: "), finding.reason


def test_checkpoint_roundtrip() -> None:
    fresh = DestructiveOps()
    fresh.restore(DestructiveOps().checkpoint())
    case = load_cases(fixture_path(DestructiveOps))[0]
    assert [f.score for f in _run(fresh, *case.events)] == [f.score for f in _run(DestructiveOps(), *case.events)]


def test_odd_argument_shapes_do_not_crash() -> None:
    odd = [
        {"tool": None, "target": None, "args": {"a": [1, {"b": None}], "c": True, "d": 3.5, "e": None}},
        {"tool": "Bash", "args": {"command": ["rm", "-rf", "/"], "x": {"y": "z"}}},
        {"tool": "gmail.delete", "args": {"ids": "not-a-list", "query": 7, "count": True, "all": "yes"}},
        {"tool": "drive.delete", "args": {"file_ids": [None] * 30}},
        {"tool": "sql.query", "args": {"sql": None, "query": ["DROP TABLE x"]}},
        {"tool": "kubectl", "target": None, "args": {"argv": ["delete", 3, None]}},
        {"kind": "session_start", "attributes": {"cwd": 42}},
        {"kind": "tool_result", "tool": "Bash", "attributes": {"content": 42, "git_branch": ["main"]}},
    ]
    _run(DestructiveOps(), *odd)


@pytest.mark.parametrize("unit", ["rm -rf ", "DROP TABLE x; ", "git push -f origin +main ", "'", "/* ", "db.x.drop() "])
def test_pathological_inputs_stay_bounded(unit: str) -> None:
    """8,000-character repetitions: the detector gets through them and reports at most its cap per action."""
    text = (unit * (8000 // len(unit) + 1))[:8000]
    det = DestructiveOps()
    events = (bash(text), {"tool": "sql.query", "args": {"sql": text}}, {"kind": "tool_result", "tool": "Bash"})
    for finding in _run(det, *events):
        assert 0.0 < finding.score <= 1.0
    assert len(_run(det, bash(text))) <= 4


# -- tricky cases ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        "rm -rf build/ dist/ node_modules/ __pycache__ .pytest_cache /tmp/xyz target/",
        "rm -rf ~/.cache/pip",
        "rm file.txt",
        "find /tmp/x -delete",
        "find / -perm -0002 -type d",  # `rm ` inside `-perm `: a read, not a delete
        "find / -name '*.conf' -newer /etc/hosts",
        "dd if=/dev/zero of=/tmp/img bs=1M count=10",
        "mkfs.ext4 -F disk.img",
        "truncate -s 0 app.log",
        "git push -u origin alice/dark-mode",
        "git push --force-with-lease origin feature/x",
        "git reset --hard origin/main",
        "helm uninstall demo -n demo-staging",
        "aws s3 ls s3://acme-artifacts/",
        "aws s3 rm s3://acme-artifacts/old.zip",
        "kubectl delete pod api-1 -n prod",
        "terraform plan -destroy -out tfplan",
        "echo 'never run rm -rf / here' > NOTES.txt",
        'git commit -m "Robert\'); DROP TABLE students;--"',
        "psql -c \"SELECT 'DROP TABLE users; --' AS note\"",
        "psql -c 'DELETE FROM sessions WHERE expires_at < now()'",
    ],
)
def test_negatives(command: str) -> None:
    assert _top(DestructiveOps(), bash(command)) < 0.5


@pytest.mark.parametrize(
    ("command", "rule"),
    [
        ("rm -rf / --no-preserve-root", "recursive-delete-root"),
        ("sudo rm -rf /*", "recursive-delete-root"),
        ("find / -type f -delete", "recursive-delete-root"),
        ("rm -rf $HOME/*", "recursive-delete-home"),
        ("find ~ -mindepth 1 -delete", "recursive-delete-home"),
        ("rm -rf /Users/bob/", "recursive-delete-home"),
        ("rm -rf /etc /usr /var", "recursive-delete-system"),
        ("rm -rf ./*", "recursive-delete-working-tree"),
        ("rm -rf /home/dev/src/app/.git", "recursive-delete-working-tree"),
        ("sudo wipefs -a /dev/sdb", "disk-format"),
        ("cat ubuntu.iso > /dev/sdb", "disk-overwrite"),
        ("shred -n 3 /dev/sda", "disk-overwrite"),
        ("mysql -e 'DROP DATABASE shop'", "sql-drop"),
        ("sqlite3 app.db 'DELETE FROM users'", "sql-delete-all-rows"),
        ("redis-cli flushall", "datastore-wipe"),
        ("mongosh --eval 'db.getCollection(\"orders\").deleteMany({})'", "datastore-wipe"),
        ("git push origin +main", "git-force-push-protected"),
        ("git push --force --no-verify origin HEAD:main", "git-force-push-protected"),
        ("git push origin :release/1.2", "git-delete-protected-branch"),
        ("pulumi destroy --yes -s acme/web/dev", "infrastructure-destroy-unattended"),
        ("terraform apply -destroy -auto-approve", "infrastructure-destroy-unattended"),
        ("kubectl delete ns payments", "k8s-namespace-deleted"),
        ("gsutil -m rm -r gs://acme-backups", "cloud-storage-deleted"),
        ("aws s3 rb s3://acme-logs --force", "cloud-storage-deleted"),
        ("aws ec2 terminate-instances --instance-ids i-0abc", "cloud-resources-deleted"),
        ("az group delete -n web-rg --yes", "cloud-resources-deleted"),
        ("gcloud projects delete acme-sandbox", "cloud-database-deleted"),
        ("gcloud compute instances delete vm-1", "cloud-resource-deleted"),
        ("psql -h db.prod.acme.internal -c 'TRUNCATE orders, payments CASCADE;'", "production-destruction"),
    ],
)
def test_positives(command: str, rule: str) -> None:
    assert rule in _rules(DestructiveOps(), bash(command))


def test_config_branches_and_prod() -> None:
    det = DestructiveOps(DestructiveOpsConfig(protected_branches=("trunk",), protected_branch_prefixes=()))
    assert _top(det, bash("git push -f origin trunk")) >= 0.85
    assert _top(det, bash("git push -f origin main")) == 0.0
    assert _top(DestructiveOps(), bash("helm uninstall payments -n payments --kube-context prod-eu-1")) >= 0.85
    live_only = DestructiveOps(DestructiveOpsConfig(prod_markers=("live",)))
    assert "production-destruction" not in _rules(live_only, bash("psql -c 'DROP TABLE prod.orders'"))
    assert "production-destruction" in _rules(live_only, bash("kubectl delete ns shop --context live-eu"))


def test_config_protected_paths_and_bulk_threshold() -> None:
    det = DestructiveOps(DestructiveOpsConfig(protected_paths=("/data/warehouse",), bulk_delete_threshold=3))
    assert "recursive-delete-working-tree" in _rules(det, bash("rm -rf /data/warehouse/"))
    assert _top(DestructiveOps(), bash("rm -rf /data/warehouse/")) == 0.0
    three = {"tool": "gmail.delete", "args": {"message_ids": ["a", "b", "c"]}}
    assert _rules(det, three) == {"bulk-delete-many"}
    assert _rules(DestructiveOps(), three) == set()
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"bulk_delete_threshold": 0}, DestructiveOpsConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"max_scan_chars": 2048}, DestructiveOpsConfig)  # dropped: the effects layer bounds text


def test_rule_overrides() -> None:
    det = DestructiveOps(DestructiveOpsConfig(rules={"sql-drop": RuleOverride(enabled=False)}))
    assert _rules(det, bash("psql -c 'DROP TABLE users'")) == set()
    rescored = DestructiveOps(DestructiveOpsConfig(rules={"sql-drop": RuleOverride(score=0.4)}))
    assert _top(rescored, bash("psql -c 'DROP TABLE users'")) == 0.4


def test_force_push_without_branch_uses_event_attributes() -> None:
    on_main = bash("git push --force", attributes={"git_branch": "main"})
    assert _top(DestructiveOps(), on_main) >= 0.85
    on_feature = bash("git push --force", attributes={"git_branch": "feature/x"})
    assert _top(DestructiveOps(), on_feature) == 0.0
    assert _rules(DestructiveOps(), bash("git push --force")) == {"git-force-push-unnamed-branch"}
    assert _top(DestructiveOps(), bash("git push --force")) < 0.5


def test_working_tree_from_the_session_start_or_the_event() -> None:
    start = {"kind": "session_start", "attributes": {"cwd": "/home/dev/src/billing"}}
    assert _rules(DestructiveOps(), start, bash("rm -rf /home/dev/src/billing")) == {"recursive-delete-working-tree"}
    assert _rules(DestructiveOps(), start, bash("cd .. && rm -rf billing")) == {"recursive-delete-working-tree"}
    assert _rules(DestructiveOps(), start, bash("cd .. && rm -rf other-checkout")) == set()
    in_event = bash("rm -rf /srv/app", attributes={"cwd": "/srv/app"})
    assert _rules(DestructiveOps(), in_event) == {"recursive-delete-working-tree"}
    assert _rules(DestructiveOps(), bash("rm -rf /srv/app")) == set()


def test_call_and_result_are_one_action() -> None:
    call = {"kind": "tool_call", "tool": "Bash", "args": {"command": "rm -rf ~"}, "attributes": {"tool_use_id": "t1"}}
    result = {**call, "kind": "tool_result", "attributes": {"tool_use_id": "t1", "content": ""}}
    found = _run(DestructiveOps(), call, result)
    assert [(f.rule, f.event_ids) for f in found] == [("recursive-delete-home", ("e1",))]
    only_result = _run(DestructiveOps(), result)
    assert [f.rule for f in only_result] == ["recursive-delete-home"]


def test_structured_tools() -> None:
    kubectl = {"tool": "kubectl", "target": "delete", "args": {"argv": ["delete", "namespace", "payments"]}}
    assert _rules(DestructiveOps(), kubectl) == {"k8s-namespace-deleted"}
    drop = {"tool": "warehouse.run_query", "args": {"query": "DROP TABLE analytics.events"}}
    assert _rules(DestructiveOps(), drop) == {"sql-drop"}
    search = {"tool": "docs.search", "args": {"query": "DROP TABLE analytics.events"}}  # a search, not a database
    assert _rules(DestructiveOps(), search) == set()
    broad = {"tool": "mcp__mail__trash_messages", "args": {"all": True}}
    assert _rules(DestructiveOps(), broad) == {"bulk-delete-broad"}


def test_bulk_deletion_call_and_result_are_one_action() -> None:
    call = {"tool": "gmail.delete", "args": {"query": "in:anywhere"}}
    result = {**call, "kind": "tool_result", "attributes": {"content": "deleted 5,123 messages"}}
    assert [f.event_ids for f in _run(DestructiveOps(), call, result)] == [("e1",)]
    assert [f.rule for f in _run(DestructiveOps(), result)] == ["bulk-delete-broad"]
