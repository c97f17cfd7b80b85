"""Incident ids at the CLI (issue 15): `incidents list` shows git-style short ids (the shortest
prefix no other incident shares, at least 8 hex digits) that no terminal width truncates, says
"showing 50 of 75", and `show` / `resolve` / `approve` / `deny` take any unique prefix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agentwatch.cli import common
from agentwatch.cli.main import main
from agentwatch.respond.incident_queries import resolve_incident_id, short_ids
from agentwatch.store import incidents, open_store

T0 = 1_767_225_600_000


def hex_id(n: int) -> str:
    return "inc-" + hashlib.sha256(str(n).encode()).hexdigest()[:20]


TWINS = ("inc-abcdef0123456789aaaa", "inc-abcdef0123499999bbbb")  # share 11 hex digits


def add(engine, incident_id: str, opened_ms: int) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        conn.execute(
            incidents.insert().values(
                incident_id=incident_id,
                group_key=f"session_id={incident_id}",
                session_id=f"session-{incident_id}",
                agent_id="coder-1",
                severity="high",
                status="open",
                title="secret_access by agent coder-1",
                opened_ms=opened_ms,
                updated_ms=opened_ms,
                detectors=["secret_access"],
                categories=["secret_access"],
                mode="enforce",
            )
        )


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AGENTWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AGENTWATCH_CONFIG", raising=False)
    monkeypatch.delenv("AGENTWATCH_STORE_URL", raising=False)
    engine = open_store(f"sqlite:///{tmp_path / 'data' / 'agentwatch.db'}")
    for n in range(73):
        add(engine, hex_id(n), T0 + n)
    add(engine, TWINS[0], T0 + 1000)
    add(engine, TWINS[1], T0 + 1001)
    return engine


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_short_ids_are_the_shortest_unique_prefix_of_at_least_8_hex_digits(store) -> None:  # type: ignore[no-untyped-def]
    with store.connect() as conn:
        short = short_ids(conn, [*TWINS, hex_id(5)])
    assert short[TWINS[0]] == "inc-abcdef012345" and short[TWINS[1]] == "inc-abcdef012349"
    assert short[hex_id(5)] == hex_id(5)[:12]
    with store.connect() as conn:
        for full, prefix in short.items():
            assert resolve_incident_id(conn, prefix) == full


def test_list_shows_short_ids_untruncated_at_80_columns_and_says_showing_50_of_75(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(common.out, "width", 80)
    result = cli("incidents", "list")
    assert result.exit_code == 0, result.output
    assert "showing 50 of 75" in result.output
    assert "inc-abcdef012345 " in result.output and "inc-abcdef012349 " in result.output
    assert hex_id(72)[:12] in result.output
    everything = cli("incidents", "list", "--limit", "100")
    assert "incidents (75)" in everything.output and "showing" not in everything.output


def test_show_and_resolve_take_a_unique_prefix(store) -> None:  # type: ignore[no-untyped-def]
    shown = cli("incidents", "show", "inc-abcdef012345")
    assert shown.exit_code == 0, shown.output
    assert TWINS[0] in shown.output
    bare = cli("incidents", "show", hex_id(7)[4:14])  # without "inc-"
    assert bare.exit_code == 0 and hex_id(7) in bare.output
    resolved = cli("incidents", "resolve", TWINS[1][:18], "--as", "ana")
    assert resolved.exit_code == 0 and f"{TWINS[1]} resolved" in resolved.output


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (["incidents", "show"], []),
        (["approve"], ["--action", "x", "--as", "ana"]),
        (["deny"], ["--action", "x", "--as", "ana"]),
    ],
)
def test_an_ambiguous_prefix_is_one_line_naming_the_candidates(  # type: ignore[no-untyped-def]
    store, command: list[str], options: list[str]
) -> None:
    result = cli(*command, "inc-abcdef01", *options)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "is ambiguous: 2 incidents start with it" in lines[0], result.output
    assert TWINS[0] in lines[0] and TWINS[1] in lines[0] and "hint: give more characters" in lines[0]


def test_no_match_is_one_line(store) -> None:  # type: ignore[no-untyped-def]
    result = cli("incidents", "show", "inc-0000000000")
    assert result.exit_code == 1 and "no incident inc-0000000000" in result.output
    wildcard = cli("incidents", "show", "inc-%")  # LIKE wildcards are literal
    assert wildcard.exit_code == 1 and "no incident" in wildcard.output
