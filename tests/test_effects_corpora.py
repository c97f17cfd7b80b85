"""Robustness of the effects layer over third-party commands nobody here wrote (read in place from ../shared/corpora).

Every Atomic Red Team Linux/macOS sh/bash test and every tldr-pages example command is analysed:
no exception, a bounded share the parser cannot fully read (those still get fallback effects), and
an attack run from a script the session wrote carries the same effects as the attack run inline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwatch.detect.effects import effects_of
from agentwatch.detect.effects.shell import analyse_shell
from agentwatch.detect.session_state import SessionState
from bench.corpus_art import load_tests
from bench.corpus_tldr import load_examples
from tests.effects_helpers import event

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
pytestmark = pytest.mark.skipif(
    not (CORPORA / "atomic-red-team" / "SELECTED_TESTS.tsv").is_file(), reason="../shared/corpora is not present"
)


def _telling(effects):
    return {(e.op, e.resource) for e in effects if e.op != "execute" or e.classes or e.detail}


def test_every_atomic_red_team_command_is_analysed():
    tests = load_tests(CORPORA / "atomic-red-team")
    assert len(tests) == 503
    unparsed = sum(not analyse_shell(t.command).parsed for t in tests)
    with_effects = sum(bool(_telling(analyse_shell(t.command).effects)) for t in tests)
    print(
        f"\nART: {len(tests)} commands, {unparsed} ({unparsed / len(tests):.1%}) not fully parsed, "
        f"{with_effects} with effects beyond running a program"
    )
    assert unparsed / len(tests) < 0.03
    assert with_effects / len(tests) > 0.85


def test_every_tldr_example_is_analysed():
    examples = load_examples(CORPORA / "tldr")
    assert len(examples) > 30_000
    unparsed = sum(not analyse_shell.__wrapped__(e.command).parsed for e in examples)
    print(f"\ntldr: {len(examples)} commands, {unparsed} ({unparsed / len(examples):.1%}) not fully parsed")
    assert unparsed / len(examples) < 0.03


def test_atomic_red_team_write_then_run_carries_the_inline_effects():
    kept = total = 0
    for i, test in enumerate(load_tests(CORPORA / "atomic-red-team")):
        inline = _telling(effects_of(event(i, "Bash", command=test.command)))
        if not inline:
            continue
        session = SessionState(event(0, None, kind="session_start"), recent_size=4)
        effects_of(event(1, "Write", file_path="/w/t.sh", content=test.command), session)
        carried = {
            (e.op, e.resource)
            for e in effects_of(event(2, "Bash", command="bash /w/t.sh"), session)
            if e.via == "script:/w/t.sh"
        }
        total += 1
        kept += bool(inline & carried)
    print(f"\nART write-then-run: {kept}/{total} carry the inline effects")
    assert kept == total
