"""What database clients, infrastructure tools and ``git push`` destroy, as effects.

The command table (:mod:`agentwatch.detect.effects.commands`) calls in here for the programs
whose destruction is not a file operation; structured tools (``sql.query``, a ``kubectl`` tool
given an ``argv``) come here through :mod:`agentwatch.detect.effects.tools`. The resources are
named by kind so rules can match them with globs:

``git:branch/<name>`` (``git:branch/HEAD`` when a force-push names no branch, ``git:branch/*``
for ``--mirror``), ``git:tag/<name>``; detail ``force push``, ``branch delete`` or ``mirror push``.

``sql:table/<name>``, ``sql:database/<name>`` (names lower-cased, quotes dropped); detail
``drop``, ``truncate`` or ``all rows`` (a ``DELETE``, or — op ``write`` — an ``UPDATE``, with no
``WHERE``/``LIMIT``). Only statements outside string literals and comments count.

``mongo:collection/<name>``, ``mongo:database`` (detail ``drop`` or ``all documents``),
``redis:*`` / ``redis:db`` (detail ``flushall`` / ``flushdb``).

``k8s:<kind>/<name>`` (``k8s:<kind>/*`` for ``--all``; detail ``kubectl delete`` then ``all`` and the
namespace/context when given), ``terraform:<dir>`` / ``pulumi:<stack>`` … (detail ``destroy``,
``destroy auto-approve``), ``gcloud …``/``az …``/``aws …`` command words (detail ``cloud``), and
bucket URLs (``s3://b/p``, ``gs://b``; detail ``recursive`` or ``bucket``).

>>> from agentwatch.detect.effects.shell import Collector
>>> col = Collector()
>>> sql_effects(col, "SELECT 'x; DROP TABLE a'; -- DROP TABLE b\\nDELETE FROM Users; DELETE FROM s WHERE id=1")
>>> [(e.op, e.resource, e.detail) for e in col.effects]
[('delete', 'sql:table/users', 'all rows')]
>>> col = Collector()
>>> push_effects(col, ["--force", "origin", "main", "+release/1.2", ":old"])
>>> [(e.resource, e.detail) for e in col.effects]
[('git:branch/main', 'force push'), ('git:branch/release/1.2', 'force push'), ('git:branch/old', 'branch delete')]
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from agentwatch.detect.effects.model import Effect
    from agentwatch.detect.effects.shell import Collector, Stream

__all__ = [
    "CLI_TOOLS",
    "HANDLERS",
    "cloud_effects",
    "cli_line",
    "mongo_effects",
    "push_effects",
    "sql_effects",
    "sql_effects_of",
    "sql_tool_text",
]

#: Statement text examined per command or tool call (agent-written text has no length bound).
MAX_SQL_CHARS: Final = 16_384
#: Statements judged per text.
MAX_STATEMENTS: Final = 64
_NOTHING: Final[frozenset[str]] = frozenset()

# -- git push ----------------------------------------------------------------------------------------
_PUSH_VALUE_OPTS: Final = frozenset({"--repo", "-o", "--push-option", "--receive-pack", "--exec"})


def push_effects(col: Collector, args: list[str], via: str = "shell") -> None:
    """``git push`` arguments (after ``push``) → the remote refs it rewrites or deletes."""
    force = delete = mirror = False
    positional: list[str] = []
    skip = False
    for a in args[:64]:
        if skip:
            skip = False
        elif a in _PUSH_VALUE_OPTS:
            skip = True
        elif a.startswith("--"):
            force = force or a == "--force" or a.startswith("--force-with-lease")
            mirror = mirror or a == "--mirror"
            delete = delete or a == "--delete"
        elif a.startswith("-") and len(a) > 1:
            force = force or "f" in a
            delete = delete or "d" in a
        else:
            positional.append(a)
    if mirror:
        col.add("delete", "git:branch/*", _NOTHING, via, "mirror push")
        return
    refs = positional[1:]
    for ref in refs[:16]:
        forced = ref.startswith("+")
        ref = ref.lstrip("+")
        removed = delete or ref.startswith(":")
        if forced or force or removed:
            col.add(
                "delete",
                _ref_resource(ref.rpartition(":")[2] or ref),
                _NOTHING,
                via,
                "branch delete" if removed else "force push",
            )
    if force and not refs:
        col.add("delete", "git:branch/HEAD", _NOTHING, via, "force push")


def _ref_resource(ref: str) -> str:
    if ref.startswith("refs/tags/"):
        return "git:tag/" + ref[len("refs/tags/") :]
    return "git:branch/" + ref.removeprefix("refs/heads/")


# -- SQL, MongoDB, Redis -----------------------------------------------------------------------------
_NAME: Final = r"([\w.$\"`\[\]-]+)"
_STATEMENT: Final = re.compile(
    r"(?is)\A\s*(?:"
    rf"drop\s+(table|database|schema|collection)\s+(?:if\s+exists\s+)?{_NAME}"
    rf"|truncate\s+(?:table\s+)?(?:only\s+)?{_NAME}"
    rf"|delete\s+from\s+(?:only\s+)?{_NAME}(.*)"
    rf"|update\s+(?:only\s+)?{_NAME}\s+set\s(.*)"
    r")"
)
_SCOPED: Final = re.compile(r"(?i)\b(?:where|limit|using)\b")


def sql_statements(text: str) -> list[str]:
    """The statements of ``text`` with string literals blanked and comments removed (bounded)."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, min(len(text), MAX_SQL_CHARS)
    while i < n and len(out) < MAX_STATEMENTS:
        ch = text[i]
        if ch in "'\"`":
            end = i + 1
            while end < n:
                if text[end] == ch:
                    if end + 1 < n and text[end + 1] == ch:  # doubled quote: an escaped one
                        end += 2
                        continue
                    break
                end += 1
            buf.append(f"{ch}x{ch}" if ch == "'" else text[i : end + 1])
            i = end + 1
        elif text.startswith("--", i) or ch == "#":
            nl = text.find("\n", i, n)
            i = n if nl < 0 else nl
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2, n)
            i = n if close < 0 else close + 2
        elif ch == ";":
            out.append("".join(buf))
            buf = []
            i += 1
        else:
            buf.append(ch)
            i += 1
    if buf and len(out) < MAX_STATEMENTS:
        out.append("".join(buf))
    return out


def _table(name: str) -> str:
    return name.strip('"`[]').replace('"', "").replace("`", "").replace("[", "").replace("]", "").lower().rstrip(",)")


def sql_effects(col: Collector, text: str, via: str = "shell") -> None:
    """SQL text → the tables and databases it drops, truncates or empties."""
    if not text or not _SQL_HINT.search(text[:MAX_SQL_CHARS]):
        return
    for statement in sql_statements(text):
        m = _STATEMENT.match(statement)
        if m is None:
            continue
        kind, dropped, truncated, deleted, del_rest, updated, upd_rest = m.groups()
        if dropped:
            what = "database" if kind.lower() in ("database", "schema") else "table"
            col.add("delete", f"sql:{what}/{_table(dropped)}", _NOTHING, via, "drop")
        elif truncated:
            col.add("delete", f"sql:table/{_table(truncated)}", _NOTHING, via, "truncate")
        elif deleted and not _SCOPED.search(del_rest or ""):
            col.add("delete", f"sql:table/{_table(deleted)}", _NOTHING, via, "all rows")
        elif updated and not _SCOPED.search(upd_rest or ""):
            col.add("write", f"sql:table/{_table(updated)}", _NOTHING, via, "all rows")


_SQL_HINT: Final = re.compile(r"(?i)\b(?:drop|truncate|delete|update)\b")
_MONGO: Final = re.compile(
    r"\bdb\.(?:dropDatabase\(\s*\)"
    r"|(?:getCollection\(\s*['\"]([\w.-]{1,80})['\"]\s*\)|(\w{1,80}))\.(drop\(\s*\)|(?:deleteMany|remove)\(\s*\{\s*\}\s*\)))"
)


def mongo_effects(col: Collector, code: str, via: str = "shell") -> None:
    """MongoDB shell code → the collections it drops or empties, and a dropped database."""
    if "db." not in code:
        return
    for m in _MONGO.finditer(code[:MAX_SQL_CHARS]):
        if m.group(0).startswith("db.dropDatabase"):
            col.add("delete", "mongo:database", _NOTHING, via, "drop")
            continue
        name = m.group(1) or m.group(2)
        col.add(
            "delete",
            f"mongo:collection/{name.lower()}",
            _NOTHING,
            via,
            "drop" if m.group(3).startswith("drop") else "all documents",
        )


# -- programs ------------------------------------------------------------------------------------------
#: SQL client → options whose value is a statement.
_SQL_OPTS: Final = {
    "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"),
    "sqlcmd": ("-q", "-Q", "--query"),
    "clickhouse-client": ("-q", "--query"),
    "snowsql": ("-q", "--query"),
    "duckdb": ("-c",),
    "cockroach": ("-e", "--execute"),
    "mongo": ("--eval",),
    "mongosh": ("--eval",),
}
_SQL_POSITIONAL: Final = frozenset({"sqlite3", "bq", "duckdb"})
#: An argument that is a statement or a dot-command, not a database file.
_SQL_TEXT: Final = re.compile(r"(?is)^\s*(?:\.|(?:select|insert|update|delete|create|drop|alter|pragma|with|attach)\b)")


def _statement_args(name: str, args: list[str]) -> list[str]:
    opts = _SQL_OPTS.get(name, ())
    found: list[str] = []
    for i, a in enumerate(args[:64]):
        for opt in opts:
            if a == opt and i + 1 < len(args):
                found.append(args[i + 1])
            elif a.startswith(opt + "=") or (len(opt) == 2 and a.startswith(opt) and len(a) > 2 and a[2] != "-"):
                found.append(a[len(opt) + (1 if a.startswith(opt + "=") else 0) :])
    if name in _SQL_POSITIONAL:
        found.extend(a for a in args[:64] if " " in a and not a.startswith("-"))
    return found


def sql_client(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``psql -c``, ``mysql -e``, ``sqlite3 db '…'``, ``mongosh --eval``, a heredoc on stdin."""
    texts = _statement_args(name, args)
    if name == "sqlite3":  # the database file is read (a browser's cookie or login store, say)
        db = next((a for a in args[:64] if not a.startswith("-") and not _SQL_TEXT.match(a)), None)
        if db and db != ":memory:":
            col.path("read", db, "sqlite3")
    if stdin is not None and stdin.text:
        texts.append(stdin.text)
    for text in texts:
        if name in ("mongo", "mongosh"):
            mongo_effects(col, text)
        else:
            sql_effects(col, text)
    return None


def redis_client(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``redis-cli flushall`` / ``flushdb`` (as arguments or on stdin)."""
    words = [a.lower() for a in args[:64]]
    if stdin is not None and stdin.text:
        words.extend(stdin.text[:MAX_SQL_CHARS].lower().split())
    for verb in ("flushall", "flushdb"):
        if verb in words:
            col.add("delete", "redis:*" if verb == "flushall" else "redis:db", _NOTHING, "shell", verb)
    return None


_AUTO_APPROVE: Final = frozenset(
    {"-auto-approve", "--auto-approve", "--yes", "-y", "--force", "-f", "--require-approval=never"}
)


def iac_destroy(col: Collector, name: str, args: list[str], stdin: Stream | None) -> Stream | None:
    """``terraform destroy``, ``terraform apply -destroy``, ``pulumi destroy``, ``cdk destroy``, ``sls remove`` …"""
    words = [a for a in args[:64] if not a.startswith("-")]
    flags = [a for a in args[:64] if a.startswith("-")]
    if name in ("terraform", "terragrunt", "tofu"):
        destroys = "destroy" in words[:2] or ("apply" in words[:2] and "-destroy" in flags)
        where = next((a.partition("=")[2] for a in flags if a.startswith("-chdir=")), ".")
    else:
        destroys = bool(words) and words[0] in ("destroy", "remove")
        where = next(
            (args[i + 1] for i, a in enumerate(args[:63]) if a in ("-s", "--stack")),
            words[1] if len(words) > 1 else ".",
        )
    if destroys:
        detail = "destroy auto-approve" if _AUTO_APPROVE.intersection(flags) else "destroy"
        col.add("delete", f"{name}:{where}", _NOTHING, "shell", detail)
    return None


_KUBE_VALUE_OPTS: Final = frozenset(
    {
        "-n",
        "--namespace",
        "--context",
        "-l",
        "--selector",
        "--field-selector",
        "-f",
        "--filename",
        "-o",
        "--output",
        "--grace-period",
        "--timeout",
        "--cluster",
        "--user",
        "--kubeconfig",
        "-c",
        "--wait",
    }
)
_NAMESPACE_KINDS: Final = frozenset({"ns", "namespace", "namespaces"})


def _kubectl_delete(col: Collector, args: list[str]) -> None:
    opts: dict[str, str] = {}
    operands: list[str] = []
    i = 0
    while i < min(len(args), 64):
        a = args[i]
        name, eq, value = a.partition("=")
        if name in _KUBE_VALUE_OPTS:
            if not eq and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            opts[name] = value
        elif a.startswith("-"):
            opts[name] = value or "true"
        else:
            operands.append(a)
        i += 1
    if "delete" not in operands:
        return
    operands = operands[operands.index("delete") + 1 :]
    scope = "".join(
        f" {flag} {opts[flag]}" for flag in ("-n", "--namespace", "--context", "--cluster") if opts.get(flag)
    )
    everything = any(opts.get(f) not in (None, "false") for f in ("--all", "-A", "--all-namespaces"))
    kind, _, first = operands[0].partition("/") if operands else ("", "", "")
    names = ([first] if first else []) + operands[1:]
    if not kind:
        return
    if everything:
        col.add("delete", f"k8s:{kind}/*", _NOTHING, "shell", f"kubectl delete all{scope}")
    if kind in _NAMESPACE_KINDS:
        kind = "namespace"
    for target in names[:8]:
        col.add("delete", f"k8s:{kind}/{target}", _NOTHING, "shell", f"kubectl delete{scope}")


def cloud_effects(col: Collector, name: str, args: list[str]) -> bool:
    """Deletions by ``kubectl``, ``terraform``, ``gcloud``, ``az``, ``gsutil`` and ``aws s3``/``ec2``/``kms``;
    whether any was found (the caller's other readings of the command then do not apply)."""
    before = len(col.effects)
    words = [a for a in args[:64] if not a.startswith("-")]
    if name in ("kubectl", "oc"):
        _kubectl_delete(col, args)
    elif name in ("terraform", "terragrunt", "tofu"):
        iac_destroy(col, name, args, None)
    elif name in ("gcloud", "az") and "delete" in words[:5]:
        at = words.index("delete")
        col.add("delete", " ".join([name, *words[: at + 2]]), _NOTHING, "shell", "cloud")
    elif name in ("gcloud", "gsutil") and ("rm" in words[:3] or "rb" in words[:3]):
        recursive = any(a in ("-r", "-R", "--recursive") for a in args[:64])
        for url in [w for w in words if "://" in w][:8]:
            if recursive or "rb" in words[:3]:
                col.add("delete", url, _NOTHING, "shell", "recursive" if recursive else "bucket")
    elif name == "aws" and words[:2] in (["s3", "rm"], ["s3", "rb"]):
        flag = "--recursive" if words[1] == "rm" else "--force"
        if flag in args:
            for url in [w for w in words[2:] if "://" in w][:8]:
                col.add("delete", url, _NOTHING, "shell", "recursive" if words[1] == "rm" else "bucket")
    elif name == "aws" and words[1:2] in (["terminate-instances"], ["schedule-key-deletion"], ["delete-bucket"]):
        col.add("delete", " ".join(["aws", *words[:2]]), _NOTHING, "shell", "cloud")
    return len(col.effects) > before


#: Programs this module reads that the command table has no other handler for.
HANDLERS: Final = {
    **{name: sql_client for name in _SQL_OPTS},
    "sqlite3": sql_client,
    "bq": sql_client,
    "redis-cli": redis_client,
    "terragrunt": iac_destroy,
    "tofu": iac_destroy,
    "pulumi": iac_destroy,
    "cdk": iac_destroy,
    "cdktf": iac_destroy,
    "sst": iac_destroy,
    "serverless": iac_destroy,
    "sls": iac_destroy,
}

# -- structured tools ----------------------------------------------------------------------------------
#: Tools named after a command-line program (``kubectl``, ``aws.cli``): their target or ``argv`` is its command line.
CLI_TOOLS: Final = frozenset(
    {
        "kubectl",
        "oc",
        "terraform",
        "terragrunt",
        "tofu",
        "aws",
        "gcloud",
        "az",
        "gsutil",
        "helm",
        "git",
        "pulumi",
        "psql",
        "mysql",
        "sqlite3",
        "redis-cli",
        "mongosh",
        "mongo",
    }
)


def cli_line(program: str, target: str | None, args: Mapping[str, Any]) -> str | None:
    """The command line a CLI-named tool ran: its target when it starts with the program, else program + ``argv``."""
    if target and (target == program or target.startswith(program + " ")):
        return target[:MAX_SQL_CHARS]
    argv = args.get("argv") or args.get("args")
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv[:64]):
        return " ".join([program, *(shlex.quote(a) for a in argv[:64])])[:MAX_SQL_CHARS]
    return None


_DB_WORDS: Final = frozenset(
    {
        "sql",
        "bigquery",
        "bq",
        "snowflake",
        "postgres",
        "postgresql",
        "mysql",
        "sqlite",
        "database",
        "db",
        "warehouse",
        "redshift",
        "clickhouse",
        "duckdb",
        "athena",
        "mongo",
        "mongodb",
        "supabase",
    }
)
_WORDS: Final = re.compile(r"[a-z]+")


def sql_effects_of(statement: str) -> tuple[Effect, ...]:
    """The effects of a database tool's statement (``via="tool"``)."""
    from agentwatch.detect.effects.shell import Collector  # circular at import: shell → commands → here

    col = Collector()
    sql_effects(col, statement, "tool")
    return tuple(col.effects)


def sql_tool_text(tool: str, args: Mapping[str, Any]) -> str | None:
    """The statement a database tool runs (``sql``/``statement`` argument, or ``query`` for a tool named for a
    database), or None."""
    for key in ("sql", "statement", "sql_query"):
        value = args.get(key)
        if isinstance(value, str):
            return value
    value = args.get("query")
    if isinstance(value, str) and not _DB_WORDS.isdisjoint(_WORDS.findall(tool.lower())):
        return value
    return None
