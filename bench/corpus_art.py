"""Atomic Red Team → labelled Claude Code sessions (attacks, for recall).

Source: ``<corpora>/atomic-red-team`` (Red Canary, MIT; read in place, never copied).
``SELECTED_TESTS.tsv`` lists the 503 Linux/macOS tests run by ``sh``/``bash``; each is
loaded from its technique YAML by ``test_index`` (the files also hold Windows tests).

Conversion choices, stated once:

- ``#{arg}`` becomes ``input_arguments.<arg>.default`` (twice, for defaults naming other
  arguments); ``PathToAtomicsFolder`` (also ``$PathToAtomicsFolder``) becomes
  :data:`ATOMICS_DIR`, where an operator would have cloned the repository.
- Only ``executor.command`` is the attack. Prerequisites (``dependencies``) and
  ``cleanup_command`` are left out: they are set-up and tear-down of the test rig, not
  the behaviour being emulated.
- **inline**: the whole ``executor.command`` is *one* Bash tool call, as an agent that
  writes a multi-line shell snippet sends it (not one call per line).
- **write-then-run**: a ``Write`` of the command to ``/tmp/<guid>.sh`` (with a shebang for
  the test's executor), then Bash ``sh|bash /tmp/<guid>.sh``.
- Around the attack, benign steps of an ordinary coding session: a prompt, model
  requests, a ``Read`` of the README and a ``git status`` before, a ``git diff --stat``
  after. The attack's own events are the ``tool_decision`` and ``tool_result`` records of
  its tool calls; the rest are context.
- Each test × variant is its own session; sessions are spread round-robin over a pool of
  developers (agent ids) per variant — see :func:`build_sessions`.

Technique → tactic is :data:`TACTICS`, written from MITRE ATT&CK (Enterprise). A
technique with several tactics counts under each of them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from bench.claude_code_otlp import SessionBuilder, identity_pool, stable_id
from bench.quality_model import Item, LabelledSession

ATOMICS_DIR: Final = "/opt/atomic-red-team/atomics"
VARIANTS: Final = ("inline", "write_then_run")

_CR, _DE, _DI, _EX, _PE, _PR = (
    "credential-access",
    "defense-evasion",
    "discovery",
    "execution",
    "persistence",
    "privilege-escalation",
)
_CO, _C2, _EF, _IM, _IA, _LM = (
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
    "initial-access",
    "lateral-movement",
)

#: ATT&CK technique (or sub-technique) → its tactics, for the techniques the selected tests cover.
#: T1685/T1686/T1690 are ATT&CK's newer ids for the former T1562.001/.004/.003 family
#: (impair defenses), T1685.006 for clearing Linux/macOS system logs: defense evasion.
TACTICS: Final[Mapping[str, tuple[str, ...]]] = {
    "T1001.002": (_C2,),
    "T1003.007": (_CR,),
    "T1003.008": (_CR,),
    "T1005": (_CO,),
    "T1007": (_DI,),
    "T1014": (_DE,),
    "T1016": (_DI,),
    "T1016.001": (_DI,),
    "T1018": (_DI,),
    "T1021.005": (_LM,),
    "T1027": (_DE,),
    "T1027.001": (_DE,),
    "T1027.002": (_DE,),
    "T1027.004": (_DE,),
    "T1027.013": (_DE,),
    "T1030": (_EF,),
    "T1033": (_DI,),
    "T1036.003": (_DE,),
    "T1036.004": (_DE,),
    "T1036.005": (_DE,),
    "T1036.006": (_DE,),
    "T1036.007": (_DE,),
    "T1036.008": (_DE,),
    "T1037.004": (_PE, _PR),
    "T1037.005": (_PE, _PR),
    "T1040": (_CR, _DI),
    "T1046": (_DI,),
    "T1048": (_EF,),
    "T1048.002": (_EF,),
    "T1048.003": (_EF,),
    "T1049": (_DI,),
    "T1053.002": (_EX, _PE, _PR),
    "T1053.003": (_EX, _PE, _PR),
    "T1053.006": (_EX, _PE, _PR),
    "T1055.009": (_DE, _PR),
    "T1056.001": (_CO, _CR),
    "T1056.002": (_CO, _CR),
    "T1057": (_DI,),
    "T1059.002": (_EX,),
    "T1059.004": (_EX,),
    "T1059.006": (_EX,),
    "T1069.001": (_DI,),
    "T1069.002": (_DI,),
    "T1070.003": (_DE,),
    "T1070.004": (_DE,),
    "T1070.006": (_DE,),
    "T1070.008": (_DE,),
    "T1071.001": (_C2,),
    "T1074.001": (_CO,),
    "T1078.001": (_DE, _PE, _PR, _IA),
    "T1078.003": (_DE, _PE, _PR, _IA),
    "T1082": (_DI,),
    "T1083": (_DI,),
    "T1087.001": (_DI,),
    "T1087.002": (_DI,),
    "T1090.001": (_C2,),
    "T1090.003": (_C2,),
    "T1098.004": (_PE, _PR),
    "T1102.002": (_C2,),
    "T1105": (_C2,),
    "T1110.001": (_CR,),
    "T1110.004": (_CR,),
    "T1113": (_CO,),
    "T1115": (_CO,),
    "T1123": (_CO,),
    "T1124": (_DI,),
    "T1132.001": (_C2,),
    "T1135": (_DI,),
    "T1136.001": (_PE,),
    "T1136.002": (_PE,),
    "T1140": (_DE,),
    "T1195.002": (_IA,),
    "T1201": (_DI,),
    "T1217": (_DI,),
    "T1222.002": (_DE,),
    "T1485": (_IM,),
    "T1486": (_IM,),
    "T1489": (_IM,),
    "T1490": (_IM,),
    "T1496": (_IM,),
    "T1497.001": (_DE, _DI),
    "T1497.003": (_DE, _DI),
    "T1518": (_DI,),
    "T1518.001": (_DI,),
    "T1529": (_IM,),
    "T1531": (_IM,),
    "T1539": (_CR,),
    "T1543.001": (_PE, _PR),
    "T1543.002": (_PE, _PR),
    "T1543.004": (_PE, _PR),
    "T1546.004": (_PE, _PR),
    "T1546.005": (_PE, _PR),
    "T1546.014": (_PE, _PR),
    "T1546.018": (_PE, _PR),
    "T1547.006": (_PE, _PR),
    "T1547.007": (_PE, _PR),
    "T1547.015": (_PE, _PR),
    "T1548.001": (_PR, _DE),
    "T1548.003": (_PR, _DE),
    "T1552": (_CR,),
    "T1552.001": (_CR,),
    "T1552.003": (_CR,),
    "T1552.004": (_CR,),
    "T1552.005": (_CR,),
    "T1552.007": (_CR,),
    "T1553.001": (_DE,),
    "T1553.004": (_DE,),
    "T1555.001": (_CR,),
    "T1555.003": (_CR,),
    "T1556.003": (_CR, _DE, _PE),
    "T1560.001": (_CO,),
    "T1560.002": (_CO,),
    "T1564.001": (_DE,),
    "T1564.002": (_DE,),
    "T1567.004": (_EF,),
    "T1568.002": (_C2,),
    "T1569.001": (_EX,),
    "T1569.002": (_EX,),
    "T1569.003": (_EX,),
    "T1571": (_C2,),
    "T1572": (_C2,),
    "T1574.006": (_PE, _PR, _DE),
    "T1578.002": (_DE,),
    "T1580": (_DI,),
    "T1614": (_DI,),
    "T1614.001": (_DI,),
    "T1652": (_DI,),
    "T1659": (_IA, _C2),
    "T1685": (_DE,),
    "T1685.002": (_DE,),
    "T1685.004": (_DE,),
    "T1685.006": (_DE,),
    "T1686": (_DE,),
    "T1690": (_DE,),
}

_ARG: Final = re.compile(r"#\{([^}]+)\}")
#: Benign work in the same repository, before and after the attack.
PROJECT: Final = "/home/dev/project"


@dataclass(frozen=True, slots=True)
class AtomicTest:
    guid: str
    technique: str
    name: str
    executor: str
    command: str
    elevation_required: bool

    @property
    def tactics(self) -> tuple[str, ...]:
        return TACTICS.get(self.technique) or TACTICS.get(self.technique.split(".")[0]) or ("unmapped",)


def substitute(command: str, arguments: Mapping[str, Any] | None) -> str:
    """``#{arg}`` → its default, then ``PathToAtomicsFolder`` → :data:`ATOMICS_DIR`.

    >>> substitute("cat #{f} > #{out}", {"f": {"default": "/etc/shadow"}, "out": {"default": 1}})
    'cat /etc/shadow > 1'
    >>> substitute("sh $PathToAtomicsFolder/T1/src/x.sh", None)
    'sh /opt/atomic-red-team/atomics/T1/src/x.sh'
    """
    defaults = {name: spec.get("default") for name, spec in (arguments or {}).items() if isinstance(spec, dict)}

    def one(match: re.Match[str]) -> str:
        value = defaults.get(match.group(1))
        return match.group(0) if value is None else str(value)

    for _ in range(2):  # a default may itself name another argument
        command = _ARG.sub(one, command)
    return command.replace("$PathToAtomicsFolder", ATOMICS_DIR).replace("PathToAtomicsFolder", ATOMICS_DIR)


def load_tests(root: Path, limit: int | None = None) -> list[AtomicTest]:
    """The tests ``SELECTED_TESTS.tsv`` lists, in its order (the first ``limit`` if given)."""
    manifest = root / "SELECTED_TESTS.tsv"
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if limit is not None:
        rows = rows[:limit]
    files: dict[str, Any] = {}
    tests: list[AtomicTest] = []
    for row in rows:
        doc = files.get(row["file"])
        if doc is None:
            with open(root / row["file"]) as handle:
                doc = files[row["file"]] = yaml.load(handle, Loader=yaml.CSafeLoader)
        spec = doc["atomic_tests"][int(row["test_index"])]
        if spec.get("auto_generated_guid") != row["auto_generated_guid"]:
            raise ValueError(f"{manifest}: {row['file']} test {row['test_index']} is not {row['auto_generated_guid']}")
        executor = spec["executor"]
        tests.append(
            AtomicTest(
                guid=row["auto_generated_guid"],
                technique=row["attack_technique"],
                name=spec.get("name", row["test_name"]),
                executor=executor["name"],
                command=substitute(executor["command"], spec.get("input_arguments")).strip(),
                elevation_required=bool(executor.get("elevation_required")),
            )
        )
    return tests


def build_sessions(
    tests: list[AtomicTest], variant: str, *, start_ms: int, agents: int = 8, spacing_ms: int = 90_000
) -> list[LabelledSession]:
    """One session per test in ``variant`` (``inline`` or ``write_then_run``).

    Agent ids: the sessions of a variant are spread round-robin over ``agents`` developers
    of one pool (``art-inline`` / ``art-write-then-run``), so per-agent learned detectors
    see several sessions per agent, as in a real fleet, without a warm-up phase: part 1
    measures the rule-based detection that needs none. Sessions start ``spacing_ms`` apart.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    pool = identity_pool("art-" + variant.replace("_", "-"), agents)
    sessions: list[LabelledSession] = []
    for n, test in enumerate(tests):
        session_id = stable_id("art", variant, test.guid)
        builder = SessionBuilder(pool[n % len(pool)], session_id, start_ms + n * spacing_ms)
        context: list[int] = [builder.user_prompt(52), builder.api_request()]
        context += builder.read(f"{PROJECT}/README.md")
        context.append(builder.api_request())
        context += builder.bash("git status --short", "Show working tree status")
        context.append(builder.api_request())
        if variant == "inline":
            attack = list(builder.bash(test.command, "Run the maintenance step"))
        else:
            script = f"/tmp/{test.guid}.sh"
            shell = "bash" if test.executor == "bash" else "sh"
            attack = list(builder.write(script, f"#!/bin/{shell}\n{test.command}\n"))
            context.append(builder.api_request())
            attack += builder.bash(f"{shell} {script}", "Run the maintenance script")
        context.append(builder.api_request())
        context += builder.bash("git diff --stat", "Summarise changes")
        meta = {
            "guid": test.guid,
            "technique": test.technique,
            "tactics": list(test.tactics),
            "name": test.name,
            "executor": test.executor,
            "command": test.command,
        }
        items = [
            Item(key=test.guid, kind="attack", positions=tuple(attack), meta=meta, anchor=attack[1]),
            Item(key=test.guid + ":context", kind="context", positions=tuple(context), meta={"guid": test.guid}),
        ]
        sessions.append(LabelledSession(session_id, builder.encode(), len(builder), items))
    return sessions
