"""Effects of git pushes, database clients, cluster, IaC and cloud CLIs (agentwatch.detect.effects.infra)."""

from __future__ import annotations

from typing import Any

import pytest

from agentwatch.detect.effects import effects_of
from agentwatch.detect.effects.infra import sql_statements
from agentwatch.events.audit_event import from_mapping


def _effects(tool: str, target: str | None = None, **args: Any) -> set[tuple[str, str, str | None]]:
    raw = {
        "event_id": "e1",
        "ts": 1767225600000,
        "session_id": "s",
        "agent_id": "a",
        "kind": "tool_call",
        "tool": tool,
        "target": target,
        "args": args,
    }
    return {(e.op, e.resource, e.detail) for e in effects_of(from_mapping(raw)) if e.op != "execute"}


def _sh(command: str) -> set[tuple[str, str, str | None]]:
    return _effects("Bash", command=command)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("git push --force origin main", ("delete", "git:branch/main", "force push")),
        ("git push origin main --force-with-lease", ("delete", "git:branch/main", "force push")),
        ("git push origin +refs/heads/main:refs/heads/main", ("delete", "git:branch/main", "force push")),
        ("git push -f", ("delete", "git:branch/HEAD", "force push")),
        ("git push -d origin old", ("delete", "git:branch/old", "branch delete")),
        ("git push origin :refs/tags/v1", ("delete", "git:tag/v1", "branch delete")),
        ("git push --mirror backup", ("delete", "git:branch/*", "mirror push")),
        ("psql -c 'DROP TABLE IF EXISTS \"Orders\"'", ("delete", "sql:table/orders", "drop")),
        ("mysql --execute='DROP SCHEMA shop'", ("delete", "sql:database/shop", "drop")),
        ("echo 'TRUNCATE TABLE logs;' | psql", ("delete", "sql:table/logs", "truncate")),
        ("sqlite3 a.db 'UPDATE users SET admin = 1'", ("write", "sql:table/users", "all rows")),
        ("redis-cli -n 2 FLUSHDB", ("delete", "redis:db", "flushdb")),
        ("mongosh --eval 'db.users.remove({})'", ("delete", "mongo:collection/users", "all documents")),
        ("terraform destroy", ("delete", "terraform:.", "destroy")),
        ("tofu -chdir=envs/prod apply -destroy -auto-approve", ("delete", "tofu:envs/prod", "destroy auto-approve")),
        ("kubectl delete deploy --all -n shop", ("delete", "k8s:deploy/*", "kubectl delete all -n shop")),
        ("kubectl --context prod delete ns shop", ("delete", "k8s:namespace/shop", "kubectl delete --context prod")),
        ("aws s3 rm s3://b/p --recursive", ("delete", "s3://b/p", "recursive")),
        ("gcloud sql instances delete db1", ("delete", "gcloud sql instances delete db1", "cloud")),
        ("helm uninstall api -n prod", ("delete", "package:api", "helm uninstall")),
    ],
)
def test_destruction_effects(command: str, expected: tuple[str, str, str]) -> None:
    assert expected in _sh(command)


@pytest.mark.parametrize(
    "command",
    [
        "git push origin main",
        "git push -u origin feature/x",
        "psql -c 'DELETE FROM s WHERE id = 1'",
        "psql -c \"SELECT 'DROP TABLE x'\"",
        "psql -c 'SELECT 1 -- DROP TABLE x'",
        "terraform plan -destroy",
        "kubectl get ns",
        "kubectl delete pod x --dry-run=client -o yaml",
        "aws s3 rm s3://b/one.txt",
        "gsutil ls gs://b",
        "redis-cli get flushall-count",
    ],
)
def test_no_destruction(command: str) -> None:
    found = _sh(command)
    assert not {e for e in found if e[0] == "delete" and ":" in e[1] and not e[1].startswith("k8s:pod/")}, found


def test_helm_namespace_is_not_a_package() -> None:
    assert ("delete", "package:prod", "helm uninstall") not in _sh("helm uninstall api -n prod")


def test_structured_tools() -> None:
    assert ("delete", "sql:table/t", "drop") in _effects("sql.query", args_sql := "DROP TABLE t", sql=args_sql)
    assert ("delete", "k8s:namespace/x", "kubectl delete") in _effects("kubectl", None, argv=["delete", "ns", "x"])
    assert ("delete", "s3://b", "recursive") in _effects("aws.cli", "aws s3 rm s3://b --recursive")
    assert _effects("search.query", query="DROP TABLE t") == set()  # not a database tool


def test_statements_are_bounded_and_literal_aware() -> None:
    assert sql_statements("a 'b;c' d; e") == ["a 'x' d", " e"]
    assert len(sql_statements("x;" * 100_000)) <= 64
    assert sql_statements("/* unterminated") == []
