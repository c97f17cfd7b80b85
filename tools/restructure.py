#!/usr/bin/env python3
"""Move the flat ``monitor/`` modules into stage sub-packages of ``agentwatch`` (issue 10).

Re-runnable and idempotent. Run from anywhere inside the repository::

    python3 tools/restructure.py            # move + rewrite; exit 1 if monitor/ has modules it does not know
    python3 tools/restructure.py --check    # only report what it would do (exit 1 if anything is left)

What it does, in order:

1. **Unknown modules.** Every ``*.py`` directly in ``monitor/`` (and every sub-folder of it) must
   be in :data:`MOVES` (as a source or a target), in :data:`STAYS`, or already inside one of the
   stage packages (:data:`STAGE_PACKAGES`). Anything else is listed and the script exits 1
   *before changing anything* — add it to :data:`MOVES` (or :data:`STAYS`) and run again.
2. **Moves**, with ``git mv`` (so git's rename detection carries later edits across):
   one ``old path → new path`` per row of :data:`MOVES`; a row ending in ``/`` moves a folder.
   Missing ``__init__.py`` of the stage packages are created.
3. **References**, across the tree (``.py``, ``pyproject.toml``, ``Makefile``, ``Dockerfile``,
   ``compose.yaml``, ``*.md``, ``*.toml``, ``*.yaml``, ``*.yml``, ``*.j2``, ``*.cfg``, ``*.txt``, ``.ci/run``):

   - ``monitor.<module>`` → ``agentwatch.<stage>.<module>`` (imports, docstrings, comments,
     strings such as ``mock.patch("monitor.x.y")`` and ``python -m monitor.cli``);
   - ``from monitor import a, b`` → one ``from agentwatch.<stage> import …`` per stage, keeping the
     local names (``import x as old_name`` where a module was renamed);
   - ``detectors.<module>`` / ``playbooks.<module>`` → ``agentwatch.detectors.<module>`` /
     ``agentwatch.playbooks.<module>`` (the folders stay; setuptools maps them into ``agentwatch``).
     Config keys such as ``[detectors.secret_access]`` and attribute access such as
     ``config.detectors.get`` are left alone;
   - paths ``monitor/<old>.py`` → ``monitor/<new>.py``.

   In Python files only import statements, strings and comments are rewritten (found with
   :mod:`tokenize`), never attribute access on a variable that happens to be called ``monitor``.
   Symbols of a module that was later split (:data:`SPLITS`) are sent to their new module.

Stdlib only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

# -- the mapping table: old path → new path (relative to the repository root) ----------------------
MOVES: list[tuple[str, str]] = [
    # events: the one shape every input is mapped onto, and what is rejected
    ("monitor/event.py", "monitor/events/audit_event.py"),
    ("monitor/dead_letter.py", "monitor/events/dead_letter.py"),
    # ingest: Kafka and files in
    ("monitor/kafka_runner.py", "monitor/ingest/kafka_runner.py"),
    ("monitor/replay.py", "monitor/ingest/replay.py"),
    ("monitor/topics.py", "monitor/ingest/topics.py"),
    ("monitor/monitor_process.py", "monitor/ingest/monitor_process.py"),
    # detect: the detector contract, registry, pipeline, policy, session state, alerts
    ("monitor/detector_spec.py", "monitor/detect/detector_spec.py"),
    ("monitor/plugins.py", "monitor/detect/detector_registry.py"),
    ("monitor/fixtures.py", "monitor/detect/detector_fixtures.py"),
    ("monitor/session_state.py", "monitor/detect/session_state.py"),
    ("monitor/pipeline.py", "monitor/detect/pipeline.py"),
    ("monitor/policy.py", "monitor/detect/policy.py"),
    ("monitor/alerts.py", "monitor/detect/alerts.py"),
    # respond: incidents, the playbook engine and its action contract, evidence, postmortem, audit
    ("monitor/responder.py", "monitor/respond/responder.py"),
    ("monitor/action_spec.py", "monitor/respond/action_spec.py"),
    ("monitor/playbooks.py", "monitor/respond/playbook_engine.py"),
    ("monitor/incidents.py", "monitor/respond/incident_lifecycle.py"),
    ("monitor/incident_record.py", "monitor/respond/incident_record.py"),
    ("monitor/incident_store.py", "monitor/respond/incident_queries.py"),
    ("monitor/journal.py", "monitor/respond/journal.py"),
    ("monitor/evidence.py", "monitor/respond/evidence.py"),
    ("monitor/postmortem.py", "monitor/respond/postmortem.py"),
    ("monitor/markdown.py", "monitor/respond/markdown.py"),
    ("monitor/redaction.py", "monitor/respond/redaction.py"),
    ("monitor/audit_log.py", "monitor/respond/audit_log.py"),
    ("monitor/control.py", "monitor/respond/control.py"),
    ("monitor/webhook.py", "monitor/respond/webhook.py"),
    ("monitor/session_guard.py", "monitor/respond/session_guard.py"),
    # approve: humans decide gated containment; Slack is one way to reach them
    ("monitor/approvals.py", "monitor/approve/approvals.py"),  # since split: see SPLITS
    ("monitor/slack_interactions.py", "monitor/approve/slack/interactions.py"),
    ("monitor/slack_messages.py", "monitor/approve/slack/messages.py"),
    ("monitor/slack_notifier.py", "monitor/approve/slack/notifier.py"),
    ("monitor/slack_text.py", "monitor/approve/slack/text.py"),
    # observe: metrics and the HTTP side
    ("monitor/metrics.py", "monitor/observe/metrics.py"),
    ("monitor/store_metrics.py", "monitor/observe/store_metrics.py"),
    ("monitor/server.py", "monitor/observe/server.py"),
    # cli
    ("monitor/cli.py", "monitor/cli/main.py"),
    ("monitor/cli_approvals.py", "monitor/cli/approvals.py"),
    # lab: simulator, demo, embedded broker, reference gateway, evaluation (the [lab] extra)
    ("monitor/simulator/", "monitor/lab/simulator/"),
    ("monitor/demo.py", "monitor/lab/demo.py"),
    ("monitor/broker.py", "monitor/lab/broker.py"),
    ("monitor/gateway.py", "monitor/lab/reference_gateway.py"),
    ("monitor/evaluation.py", "monitor/lab/evaluation.py"),
    ("monitor/report.py", "monitor/lab/evaluation_report.py"),
    ("monitor/topic_io.py", "monitor/lab/topic_io.py"),
    # shared by several stages: stays at the top of agentwatch
    ("monitor/entry_points.py", "monitor/plugin_loader.py"),
    # added on main while the move was prepared (issue 9, issue 11's effects layer)
    ("monitor/state_checkpoint.py", "monitor/ingest/state_checkpoint.py"),
    ("monitor/learned_merge.py", "monitor/detect/learned_merge.py"),
    ("monitor/effects/", "monitor/detect/effects/"),
    ("monitor/liveness.py", "monitor/respond/liveness.py"),
    ("monitor/api_token.py", "monitor/observe/api_token.py"),
]

#: Modules that stay where they are (top of ``agentwatch``, shared by several stages).
STAYS: list[str] = [
    "monitor/__init__.py",
    "monitor/defaults.toml",
    "monitor/config.py",
    "monitor/errors.py",
    "monitor/log_format.py",
    "monitor/store.py",
    "monitor/formats/",
    "monitor/best_effort.py",
    # added after the move commit (shared modules)
    "monitor/secret_catalogue.py",
    "monitor/backoff.py",
    "monitor/destinations.py",
]

#: Stage packages: their docstrings (written to a missing ``__init__.py``). Files inside are "placed".
STAGE_PACKAGES: dict[str, str] = {
    "monitor/events": "Events: the native audit event every input is mapped onto, and dead-letter records.",
    "monitor/ingest": "Ingest: Kafka (``run``) and files (``replay``) into the detection pipeline.",
    "monitor/detect": "Detect: the detector contract and registry, session state, the pipeline, policy, alerts.",
    "monitor/respond": "Respond: alerts → incidents → playbook steps; evidence, postmortems, the audit log.",
    "monitor/approve": "Approve: humans decide gated containment (request, vote, execute, expire).",
    "monitor/approve/slack": "Slack: one way to reach approvers — messages, the Web API, button clicks.",
    "monitor/observe": "Observe: Prometheus metrics and the HTTP side (``serve``).",
    "monitor/cli": "The ``agentwatch`` command line.",
    "monitor/lab": "The lab (``pip install 'agentwatch[lab]'``): simulator, demo, embedded broker, "
    "reference gateway, evaluation.",
}

#: Modules split after the move: old dotted module → {symbol: new dotted module}; "*" is the rest.
#: (``from monitor import approvals`` as a whole module cannot be redirected: import the new modules.)
SPLITS: dict[str, dict[str, str]] = {
    # approvals.py along its section banners; the approval domain no longer imports Slack
    "monitor.approvals": {
        **dict.fromkeys(
            ["OPEN", "CLOSED", "IN_FLIGHT_GRACE_MS", "now_ms", "ApprovalRequest", "expand_ids", "approval_id_for"],
            "agentwatch.approve.request",
        ),
        "request": "agentwatch.approve.request",
        **dict.fromkeys(
            ["Directory", "UserEntry", "GroupEntry", "ApprovalsFile", "approvals_file_path", "load_approvals_file"],
            "agentwatch.approve.directory",
        ),
        "FileDirectory": "agentwatch.approve.directory",
        **dict.fromkeys(
            ["REFUSALS", "VoteResult", "cast_vote", "find_approval", "active_approvers", "audited"],
            "agentwatch.approve.votes",
        ),
        **dict.fromkeys(["approval_view", "approvals_for"], "agentwatch.approve.views"),
        **dict.fromkeys(
            ["ApprovalGrant", "ContainmentCommand", "GatedAction", "require_approved", "control_message"],
            "agentwatch.respond.gated_action_spec",
        ),
        "MAX_EXECUTION_ATTEMPTS": "agentwatch.approve.executor",
        **dict.fromkeys(["TickStats", "ApprovalRuntime"], "agentwatch.approve.runtime"),
        **dict.fromkeys(["ApprovalWorker", "guarded"], "agentwatch.approve.worker"),
        "SLACK_MAX_BACKOFF_MS": "agentwatch.approve.slack.outbox",
    },
}

OLD_ROOT, NEW_ROOT = "monitor", "agentwatch"
#: Folders that keep their place and are mapped into the namespace by setuptools.
MAPPED_FOLDERS = {"detectors": "agentwatch.detectors", "playbooks": "agentwatch.playbooks"}

TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".j2", ".cfg", ".txt", ".ini"}
TEXT_NAMES = {"Makefile", "Dockerfile", "run", ".dockerignore"}
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "node_modules",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "agentwatch-data",
}


def repo_root() -> Path:
    out = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def dotted(path: str, root: str) -> str:
    """``monitor/a/b.py`` → ``<root>.a.b``; ``monitor/a/`` → ``<root>.a``."""
    rel = path.rstrip("/").removesuffix(".py").split("/")[1:]
    if rel and rel[-1] == "__init__":
        rel = rel[:-1]
    return ".".join([root, *rel])


def module_map() -> dict[str, str]:
    """Old dotted module (or package) → new dotted module, the stays included."""
    mapping = {OLD_ROOT: NEW_ROOT}
    for old, new in MOVES:
        mapping[dotted(old, OLD_ROOT)] = dotted(new, NEW_ROOT)
    for stay in STAYS:
        if stay.endswith(".py") or stay.endswith("/"):
            mapping[dotted(stay, OLD_ROOT)] = dotted(stay, NEW_ROOT)
    return mapping


# -- 1. unknown modules ------------------------------------------------------------------------------
def unknown_modules(root: Path) -> list[str]:
    known = {o for o, _ in MOVES} | {n for _, n in MOVES} | set(STAYS)
    placed_dirs = [p + "/" for p in STAGE_PACKAGES] + [n for _, n in MOVES if n.endswith("/")]
    placed_dirs += [s for s in STAYS if s.endswith("/")] + [o for o, _ in MOVES if o.endswith("/")]
    unknown = []
    base = root / OLD_ROOT
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in path.relative_to(root).parts):
            continue
        if path.is_dir():
            continue
        if rel in known or any(rel.startswith(d) for d in placed_dirs):
            continue
        if path.suffix in {".py", ".toml", ".yaml", ".json", ".jsonl", ".j2", ".md"}:
            unknown.append(rel)
    return unknown


# -- 2. moves ------------------------------------------------------------------------------------------
def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True)


def tracked(root: Path, path: str) -> bool:
    out = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=root, capture_output=True)
    return out.returncode == 0


def move_file(root: Path, old: str, new: str, dry: bool, log: list[str]) -> None:
    src, dst = root / old, root / new
    if not src.exists():
        return
    if dst.exists():
        raise SystemExit(f"both {old} and {new} exist: merge them by hand, then run again")
    log.append(f"move {old} → {new}")
    if dry:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if tracked(root, old):
        git(root, "mv", old, new)
    else:
        src.rename(dst)
        git(root, "add", new)


def do_moves(root: Path, dry: bool, log: list[str]) -> None:
    for old, new in MOVES:
        if old.endswith("/"):
            src = root / old
            if not src.is_dir():
                continue
            for path in sorted(src.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    rel = path.relative_to(src).as_posix()
                    move_file(root, old + rel, new + rel, dry, log)
            if not dry:
                for d in sorted(src.rglob("*"), reverse=True):
                    if d.is_dir() and d.name == "__pycache__":
                        for f in d.iterdir():
                            f.unlink()
                        d.rmdir()
                for d in sorted([src, *src.rglob("*")], key=lambda p: len(p.parts), reverse=True):
                    if d.is_dir() and not any(d.iterdir()):
                        d.rmdir()
        else:
            move_file(root, old, new, dry, log)
    for pkg, doc in STAGE_PACKAGES.items():
        init = root / pkg / "__init__.py"
        if (root / pkg).is_dir() and not init.exists():
            log.append(f"create {pkg}/__init__.py")
            if not dry:
                init.write_text(f'"""{doc}"""\n')
                git(root, "add", f"{pkg}/__init__.py")


# -- 3. references -------------------------------------------------------------------------------------
class Rewriter:
    def __init__(self, root: Path) -> None:
        self.map = module_map()
        self.folder_modules = {
            folder: {p.stem for p in (root / folder).glob("*.py") if p.stem != "__init__"}
            | {p.name for p in (root / folder).iterdir() if p.is_dir() and (p / "__init__.py").exists()}
            for folder in MAPPED_FOLDERS
            if (root / folder).is_dir()
        }
        self.paths = {}
        for old, new in MOVES:
            self.paths[old] = new
        names = "|".join(MAPPED_FOLDERS)
        self.dotted_re = re.compile(rf"(?<![\w.\[/$-])(?:{OLD_ROOT}|{names})(?:\.\w+)+")
        self.path_re = re.compile(rf"(?<![\w.])({OLD_ROOT}/(?:\w+/)*\w+(?:\.py)?/?)")

    # a dotted name, in free text (strings, comments, docs)
    def resolve(self, name: str, *, in_import: bool = False) -> str | None:
        parts = name.split(".")
        head = parts[0]
        if head in MAPPED_FOLDERS:
            mods = self.folder_modules.get(head, set())
            if len(parts) >= 2 and parts[1] in mods or (in_import and len(parts) == 1):
                return ".".join([MAPPED_FOLDERS[head], *parts[1:]])
            return None
        if head != OLD_ROOT:
            return None
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in SPLITS and i < len(parts):
                table = SPLITS[prefix]
                target = table.get(parts[i], table.get("*"))
                if target:
                    return ".".join([target, *parts[i:]])
            if prefix in self.map:
                if i == 1 and not in_import:
                    return None  # ``monitor.run()`` on a variable, or prose
                return ".".join([self.map[prefix], *parts[i:]])
        return None

    def text(self, s: str) -> str:
        def dot(m: re.Match[str]) -> str:
            name = m.group(0)
            # a trailing sentence dot or attribute: try the longest resolvable prefix
            return self.resolve(name) or name

        def path(m: re.Match[str]) -> str:
            p = m.group(1)
            if p in self.paths:
                return self.paths[p]
            for old, new in MOVES:
                if old.endswith("/") and p.startswith(old.rstrip("/")):
                    return new.rstrip("/") + p[len(old.rstrip("/")) :]
            return p

        return self.path_re.sub(path, self.dotted_re.sub(dot, s))

    # ``from monitor import a, b as c`` → grouped lines
    def from_root_import(self, names: list[tuple[str, str | None]], indent: str, tail: str) -> str:
        groups: dict[str, list[str]] = {}
        for name, alias in names:
            full = self.resolve(f"{OLD_ROOT}.{name}") if name != "*" else None
            if full is None:
                pkg, new_name = NEW_ROOT, name
            else:
                pkg, _, new_name = full.rpartition(".")
            local = alias or name
            groups.setdefault(pkg, []).append(new_name if local == new_name else f"{new_name} as {local}")
        lines = [f"from {pkg} import {', '.join(items)}" for pkg, items in groups.items()]
        return ("\n" + indent).join(lines) + tail

    def from_split_import(self, module: str, names: list[tuple[str, str | None]], indent: str, tail: str) -> str:
        groups: dict[str, list[str]] = {}
        for name, alias in names:
            target = self.resolve(f"{module}.{name}") or module
            pkg = target.rpartition(".")[0]
            groups.setdefault(pkg, []).append(f"{name} as {alias}" if alias else name)
        lines = [f"from {pkg} import {', '.join(items)}" for pkg, items in groups.items()]
        return ("\n" + indent).join(lines) + tail

    def python(self, src: str) -> str:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(src).readline))
        except (tokenize.TokenError, SyntaxError):
            return self.text(src)
        lines = src.splitlines(keepends=True)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))

        def pos(rc: tuple[int, int]) -> int:
            return offsets[rc[0] - 1] + rc[1]

        edits: list[tuple[int, int, str]] = []
        i = 0
        n = len(tokens)
        line_start = True
        while i < n:
            tok = tokens[i]
            if tok.type in (tokenize.STRING, tokenize.COMMENT) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                new = self.text(tok.string)
                if new != tok.string:
                    edits.append((pos(tok.start), pos(tok.end), new))
            elif line_start and tok.type == tokenize.NAME and tok.string in ("from", "import"):
                # the whole logical line
                j = i
                while j < n and tokens[j].type not in (tokenize.NEWLINE, tokenize.ENDMARKER):
                    j += 1
                stmt = src[pos(tok.start) : pos(tokens[j].start)]
                new = self.import_stmt(stmt, " " * tok.start[1])
                if new is not None and new != stmt:
                    edits.append((pos(tok.start), pos(tokens[j].start), new))
                i = j
                continue
            line_start = tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT) or (
                tok.type == tokenize.OP and tok.string == ";"
            )
            if tok.type == tokenize.COMMENT:
                line_start = False
            i += 1
        for start, end, new in sorted(edits, reverse=True):
            src = src[:start] + new + src[end:]
        return src

    FROM_RE = re.compile(r"from\s+([\w.]+)\s+import\s+(\(.*?\)|[^#\n]*?(?:\\\n[^#\n]*?)*)(\s*(?:#.*)?)$", re.S)
    IMPORT_RE = re.compile(r"import\s+(.+?)(\s*(?:#.*)?)$", re.S)

    def import_stmt(self, stmt: str, indent: str) -> str | None:
        m = self.FROM_RE.fullmatch(stmt)
        if m:
            module, names_src, tail = m.groups()
            if module == OLD_ROOT:
                names = self.parse_names(names_src)
                return self.from_root_import(names, indent, tail)
            if module in SPLITS:
                return self.from_split_import(module, self.parse_names(names_src), indent, tail)
            new = self.resolve(module, in_import=True)
            if new is None:
                return None
            return stmt.replace(module, new, 1)
        m = self.IMPORT_RE.fullmatch(stmt)
        if m:
            out = []
            changed = False
            for part in m.group(1).split(","):
                name, _, alias = part.strip().partition(" as ")
                new = self.resolve(name.strip(), in_import=True)
                if new and new != name.strip():
                    changed = True
                    if not alias.strip():
                        print(f"warning: `import {name.strip()}` now binds `{new.split('.')[0]}`", file=sys.stderr)
                    out.append(f"{new} as {alias.strip()}" if alias.strip() else new)
                else:
                    out.append(part.strip())
            return f"import {', '.join(out)}{m.group(2)}" if changed else None
        return None

    @staticmethod
    def parse_names(src: str) -> list[tuple[str, str | None]]:
        body = re.sub(r"#[^\n]*", "", src).replace("\\\n", " ").strip().strip("()")
        names = []
        for part in body.split(","):
            part = " ".join(part.split())
            if not part:
                continue
            name, _, alias = part.partition(" as ")
            names.append((name.strip(), alias.strip() or None))
        return names


def text_files(root: Path, self_path: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for fn in filenames:
            p = Path(dirpath) / fn
            if p.resolve() == self_path:
                continue
            if p.suffix in TEXT_SUFFIXES or fn in TEXT_NAMES:
                files.append(p)
    return sorted(files)


def rewrite(root: Path, dry: bool, log: list[str]) -> None:
    rw = Rewriter(root)
    me = Path(__file__).resolve()
    for path in text_files(root, me):
        try:
            src = path.read_text()
        except UnicodeDecodeError:
            continue
        new = rw.python(src) if path.suffix == ".py" else rw.text(src)
        if new != src:
            log.append(f"rewrite {path.relative_to(root)}")
            if not dry:
                path.write_text(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if anything would change")
    args = parser.parse_args()
    root = repo_root()
    unknown = unknown_modules(root)
    if unknown:
        print("monitor/ has modules the mapping does not know; add them to MOVES or STAYS in", file=sys.stderr)
        print(
            f"{Path(__file__).relative_to(root) if Path(__file__).is_relative_to(root) else __file__}:", file=sys.stderr
        )
        for rel in unknown:
            print(f"  {rel}", file=sys.stderr)
        return 1
    log: list[str] = []
    do_moves(root, args.check, log)
    rewrite(root, args.check, log)
    for line in log:
        print(line)
    if not log:
        print("nothing to do: the tree is already restructured")
    return 1 if (args.check and log) else 0


if __name__ == "__main__":
    sys.exit(main())
