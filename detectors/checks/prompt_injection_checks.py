"""Checks of the ``prompt_injection`` rule pack: the judgements over text that need code.

The marker families themselves are data (``detectors/rules/prompt_injection.yaml``, table
``injection_markers``): each family has a score, a sentence saying what it means, and patterns —
literal *anchors* each followed by a regular-expression *tail*, optionally *confirmed* by one of
the small functions in :data:`CONFIRMERS` (``"is this ``<!--`` comment addressed to an AI?"``).
A pattern's regex runs only when its anchor is in the text (one pass over the text's words, plus
a substring test per punctuation anchor), so the scan costs about the same whatever the number
of families.

Checks (registered by name, referenced from the YAML rules):

``injection_markers``
    Marker families in text the agent *reads* (``text: read``: a ``tool_result``'s content, an
    external ``message``/``prompt``) or *writes* into an instruction file (``text: written``).
    Reading marked text ``arms`` the session (``session.scratch[ARMED_KEY]``: the first such
    event, a few hundred bytes at most).
``after_injection``
    The session read injected instructions in an *earlier* event (within ``egress_window_s``).
``standing_orders``
    Written text gives a standing order: to send data outside, to run remote code, to disclose secrets.
``outside_destination``
    The action's sends and uploads that go to a destination outside ``internal_domains``.
``egress_without_effect``
    An action that sends although its effects show no send: a tool named for sending (``s3.put_object``,
    ``warehouse.export``), a large ``bytes_out``, a URL carrying data in its query.
``written_path_in``
    The action writes a path containing one of a table's fragments (operator-listed memory files).

Every check reads at most ``max_content_chars`` characters of agent-visible text and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from agentwatch.detect.detector_spec import quote
from agentwatch.detect.effects.classify import endpoint_classes, normalise_path
from agentwatch.detect.effects.model import NO_CLASSES, Effect, make
from agentwatch.detect.effects.shell import analyse_shell
from agentwatch.detect.rules.checks import CheckContext, bounded_text, check

__all__ = [
    "ARMED_KEY",
    "CONFIRMERS",
    "Hit",
    "MarkerTable",
    "armed_event",
    "combined_score",
    "compile_markers",
    "compiled_markers",
    "instruction_writes",
    "read_hits",
    "scan",
]

#: Where the session remembers the first event that carried injected instructions.
ARMED_KEY: Final = "prompt_injection.armed"
#: Hard ceiling on the text one check reads (the ``max_content_chars`` table may only lower it).
MAX_TEXT: Final = 65_536
_MAX_TRIES: Final = 12  # matches of one pattern tried before giving up on it (hostile text repeats anchors)


class Hit(NamedTuple):
    """One marker family found in a text."""

    score: float
    family: str
    what: str
    snippet: str


# -- confirmers: the judgements a regex cannot make -------------------------------------------
_SENSITIVE: Final = re.compile(
    r"secret|credential|passw|token|api[ _-]?key|\.env\b|ssh|id_rsa|id_ed25519|\.aws|private key|\.pem|kube"
    r"|customer|payment|invoice|card|iban|payroll|salar|board deck|user emails|personal data|contents"
)
#: Words that make a comment or hidden text an instruction to the agent rather than page furniture.
_AI_WORDS: Final = (
    "assistant",
    "agent",
    " ai ",
    "ai:",
    "ai,",
    "llm",
    "claude",
    "gpt",
    "copilot",
    "ignore",
    "disregard",
    "instruction",
    "do not tell",
    "system prompt",
)
_EXFIL_VERB: Final = re.compile(
    r"\b(?:send|upload|forward|post|transmit|exfiltrate|back\s+up|bcc|cc|copy|e-?mail|leak|submit)\b"
)
_DEST_LEAD: Final = ("to", "into", "at", "bcc", "cc", "to:", "bcc:", "cc:")
_DOC_REQUEST: Final = re.compile(r"(?:send|post|submit)\s+(?:an?\s+|the\s+|your\s+)?(?:\w+\s+)?requests?\b")
_ADDRESS_LEAD: Final = re.compile(r"(?:^|[\n>.!\[(]|<!--)\s*(?:ai\s+)?$")
_PROBE_VERB: Final = re.compile(r"(?:reveal|print|show|output|repeat|ignore|disregard)\s+(?:your\s+|the\s+)?$")
_TEMPLATE_KEY: Final = re.compile(r"[?&](?:data|d|q|payload|secret|token|key|c|x|info)$")


def _send_directive_window(text: str, m: re.Match[str]) -> str | None:
    """The sentence before ``to <url or address>`` when a send/upload verb in it governs the address."""
    at = m.start()
    start = at
    while start > 0 and text[start - 1] not in " \n\t(<\"'[":
        start -= 1
    if not (text[start:at].startswith(("http", "ftp", "s3:", "gs:")) or m.group() == "@"):
        return None
    lead = text[max(0, start - 12) : start].split()
    if not lead or lead[-1] not in _DEST_LEAD:
        return None
    sentence = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), text.rfind("! ", 0, start)) + 1
    window = text[max(sentence, start - 200) : start]
    verb = _EXFIL_VERB.search(window)
    if verb is None or _DOC_REQUEST.match(window, verb.start()):
        return None
    return window


def _send_sensitive(text: str, m: re.Match[str]) -> bool:
    """A send verb governs ``to <outside address>`` and the sentence names secrets or private data."""
    window = _send_directive_window(text, m)
    return window is not None and _SENSITIVE.search(window) is not None


def _send_plain(text: str, m: re.Match[str]) -> bool:
    """A send verb governs ``to <outside address>`` (and the sentence names nothing sensitive)."""
    window = _send_directive_window(text, m)
    return window is not None and _SENSITIVE.search(window) is None


def _comment_for_ai(text: str, m: re.Match[str]) -> bool:
    """The HTML comment opened here speaks to an AI or about instructions."""
    end = text.find("-->", m.end())
    inner = text[m.end() : end if end >= 0 else m.end() + 600][:1200]
    return any(w in inner for w in _AI_WORDS)


def _hidden_for_ai(text: str, m: re.Match[str]) -> bool:
    """The invisible text styled here speaks to an AI or about instructions."""
    inner = text[m.end() : m.end() + 500]
    return any(w in inner for w in _AI_WORDS)


def _line_start(text: str, m: re.Match[str]) -> bool:
    """``Assistant, …`` / ``AI agent: …`` at the start of a line, sentence, tag or comment."""
    return _ADDRESS_LEAD.search(text, max(0, m.start() - 12), m.start()) is not None


def _probe_verb(text: str, m: re.Match[str]) -> bool:
    """A verb asking to reveal or ignore the system prompt comes right before it."""
    return _PROBE_VERB.search(text, max(0, m.start() - 30), m.start()) is not None


def _template_key(text: str, m: re.Match[str]) -> bool:
    """``?data={…}``: the placeholder is the value of a data-carrying query key."""
    return _TEMPLATE_KEY.search(text, max(0, m.start() - 10), m.start()) is not None


#: Confirmers a pattern may name (``confirm:``): ``fn(lower-cased text, match) -> bool``.
CONFIRMERS: Final[dict[str, Callable[[str, re.Match[str]], bool]]] = {
    "send_sensitive": _send_sensitive,
    "send_plain": _send_plain,
    "comment_for_ai": _comment_for_ai,
    "hidden_for_ai": _hidden_for_ai,
    "line_start": _line_start,
    "probe_verb": _probe_verb,
    "template_key": _template_key,
}
#: Families found by code rather than patterns (``detect:``).
_TAG_CHARS: Final = re.compile("[\U000e0000-\U000e007f]")
_ZERO_WIDTH: Final = ("\u200b", "\u200c", "\u200d", "\u2060", "\u2062", "\u2063")
DETECTORS: Final = ("unicode_tags", "zero_width")


# -- the compiled marker table ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    score: float
    what: str
    detect: str = ""
    min_count: int = 8


#: (family index, regex, confirmer or None)
_Entry = tuple[int, "re.Pattern[str]", Callable[[str, re.Match[str]], bool] | None]
_WORD_ANCHOR: Final = re.compile(r"[a-z]+(?: [a-z]+)*")
#: Punctuation that may trail a word in running text ("…pre-approved.", "Assistant,").
_TRAILERS: Final = ("", "s", ".", ",", ":", ";", "!", "?", ")", '"', "'")


@dataclass(frozen=True, slots=True)
class MarkerTable:
    """A compiled ``injection_markers`` table: families, and where each anchored regex is opened from.

    An anchor made of plain words is filed under its longest word (with a plural and trailing
    punctuation as variants) and found by intersecting the text's whitespace-separated words
    with these keys; anchors with punctuation (``<!--``, ``://``) are substring-tested, each
    filed under the shortest such anchor it contains.
    """

    families: tuple[_Family, ...]
    words: Mapping[str, tuple[_Entry, ...]]
    raw: tuple[tuple[str, tuple[_Entry, ...]], ...]
    coded: tuple[int, ...]


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def compile_markers(table: Any) -> MarkerTable:
    """Validate and compile an ``injection_markers`` table (a list of families); ValueError says what is wrong."""
    _require(isinstance(table, list) and bool(table), "table injection_markers must be a non-empty list of families")
    families: list[_Family] = []
    entries: list[tuple[str, _Entry]] = []
    coded: list[int] = []
    for i, item in enumerate(table):
        at = f"injection_markers[{i}]"
        _require(isinstance(item, dict), f"{at}: expected a mapping")
        unknown = set(item) - {"family", "score", "what", "patterns", "detect", "min_count"}
        _require(not unknown, f"{at}: unknown key(s) {sorted(unknown)}")
        name, score, what = item.get("family"), item.get("score"), item.get("what")
        _require(isinstance(name, str) and bool(name), f"{at}: `family` must be a name")
        _require(
            isinstance(score, (int, float)) and not isinstance(score, bool) and 0 < score <= 1,
            f"{at}: `score` must be in (0, 1]",
        )
        _require(isinstance(what, str) and bool(what), f"{at}: `what` must be text")
        detect = item.get("detect", "")
        _require(detect in ("", *DETECTORS), f"{at}: `detect` must be one of {DETECTORS}")
        min_count = item.get("min_count", 8)
        _require(isinstance(min_count, int) and min_count >= 1, f"{at}: `min_count` must be a positive integer")
        families.append(_Family(name, float(score), what, detect, min_count))
        if detect:
            coded.append(len(families) - 1)
            continue
        patterns = item.get("patterns")
        _require(isinstance(patterns, list) and bool(patterns), f"{at}: `patterns` (or `detect`) is required")
        for j, pattern in enumerate(patterns):
            entries.extend(_compile_pattern(pattern, f"{at}.patterns[{j}]", len(families) - 1))
    return _index(tuple(families), entries, tuple(coded))


def _compile_pattern(pattern: Any, at: str, family: int) -> list[tuple[str, _Entry]]:
    _require(isinstance(pattern, dict), f"{at}: expected a mapping with `anchors`")
    unknown = set(pattern) - {"anchors", "tail", "confirm"}
    _require(not unknown, f"{at}: unknown key(s) {sorted(unknown)}")
    anchors = pattern.get("anchors")
    _require(
        isinstance(anchors, list) and bool(anchors) and all(isinstance(a, str) and a for a in anchors),
        f"{at}: `anchors` must be a list of text",
    )
    tail = pattern.get("tail", "")
    _require(isinstance(tail, str), f"{at}: `tail` must be a regular expression")
    confirm_name = pattern.get("confirm")
    _require(
        confirm_name is None or confirm_name in CONFIRMERS,
        f"{at}: unknown confirm {confirm_name!r}; known: {', '.join(CONFIRMERS)}",
    )
    confirm = CONFIRMERS[confirm_name] if confirm_name else None
    out = []
    for anchor in anchors:
        _require(anchor == anchor.lower(), f"{at}: anchor {anchor!r} must be lower-case (text is lower-cased)")
        try:
            rx = re.compile(re.escape(anchor) + tail)
        except re.error as exc:
            raise ValueError(f"{at}: bad tail {tail!r}: {exc}") from None
        out.append((anchor, (family, rx, confirm)))
    return out


def _index(families: tuple[_Family, ...], entries: list[tuple[str, _Entry]], coded: tuple[int, ...]) -> MarkerTable:
    words: dict[str, list[_Entry]] = {}
    raw_entries: list[tuple[str, _Entry]] = []
    for anchor, entry in entries:
        if _WORD_ANCHOR.fullmatch(anchor):
            word = max(anchor.split(), key=len)
            for trailer in _TRAILERS:
                words.setdefault(word + trailer, []).append(entry)
        else:
            raw_entries.append((anchor, entry))
    gates: list[str] = []
    for anchor in sorted({a for a, _ in raw_entries}, key=len):
        if not any(g in anchor for g in gates):
            gates.append(anchor)
    raw: dict[str, list[_Entry]] = {g: [] for g in gates}
    for anchor, entry in raw_entries:
        raw[next(g for g in gates if g in anchor)].append(entry)
    return MarkerTable(
        families, {w: tuple(v) for w, v in words.items()}, tuple((g, tuple(v)) for g, v in raw.items()), coded
    )


#: Compiled tables by identity of the (immutable once loaded) table they came from.
_COMPILED: dict[int, tuple[Any, MarkerTable]] = {}


def compiled_markers(table: Any) -> MarkerTable:
    """``table`` compiled (once per table object: tables are not changed after loading)."""
    found = _COMPILED.get(id(table))
    if found is not None and found[0] is table:
        return found[1]
    compiled = compile_markers(table)
    if len(_COMPILED) >= 32:
        _COMPILED.clear()
    _COMPILED[id(table)] = (table, compiled)
    return compiled


def _clip(text: str, limit: int) -> str:
    """``text`` if short, else its head and tail (three quarters and one quarter of ``limit``)."""
    if len(text) <= limit:
        return text
    return text[: limit - limit // 4] + "\n" + text[-(limit // 4) :]


def scan(text: str, table: MarkerTable, limit: int = 4096) -> list[Hit]:
    """Every marker family found in ``text`` (at most one hit per family), strongest first.

    ``limit`` bounds the text read (head and tail of longer text). The order of the patterns
    tried is fixed (score, family, pattern), so the quoted snippet does not depend on hashing.
    """
    text = _clip(text, max(256, min(limit, MAX_TEXT)))
    low = text.lower()
    candidates = {entry for word in table.words.keys() & set(low.split()) for entry in table.words[word]}
    candidates.update(entry for gate, entries in table.raw if gate in low for entry in entries)
    families = table.families
    found: list[Hit] = []
    seen: set[int] = set()
    for index, rx, confirm in sorted(candidates, key=lambda e: (-families[e[0]].score, e[0], e[1].pattern)):
        if index in seen:
            continue
        m = rx.search(low)
        tries = _MAX_TRIES
        while m is not None:
            if confirm is None or confirm(low, m):
                fam = families[index]
                source = text if len(text) == len(low) else low  # lower() may change the length
                snippet = source[max(0, m.start() - 10) : m.end() + 70]
                found.append(Hit(fam.score, fam.name, fam.what, snippet))
                seen.add(index)
                break
            tries -= 1
            m = rx.search(low, m.end()) if tries else None
    if not text.isascii():
        found.extend(_coded_hits(text, table))
    found.sort(key=lambda h: -h[0])
    return found


def _coded_hits(text: str, table: MarkerTable) -> list[Hit]:
    out: list[Hit] = []
    for index in table.coded:
        fam = table.families[index]
        if fam.detect == "unicode_tags":
            tag = _TAG_CHARS.search(text)
            if tag is not None:
                out.append(Hit(fam.score, fam.name, fam.what, text[max(0, tag.start() - 10) : tag.end() + 70]))
        elif fam.detect == "zero_width" and sum(text.count(z) for z in _ZERO_WIDTH) >= fam.min_count:
            out.append(Hit(fam.score, fam.name, fam.what, text[:80]))
    return out


def combined_score(hits: Sequence[Hit], bonus: float = 0.05, ceiling: float = 0.8) -> float:
    """The strongest family's score, plus ``bonus`` per extra family, capped at ``ceiling``."""
    if not hits:
        return 0.0
    return min(ceiling, max(h[0] for h in hits) + bonus * (len(hits) - 1))


# -- what text an action reads or writes -------------------------------------------------------
_MEMORY_TEXT_KEYS: Final = (
    "content",
    "new_string",
    "new_str",
    "file_text",
    "text",
    "value",
    "memory",
    "note",
    "new_source",
    "instructions",
)
_SHELL_KEYS: Final = ("command", "cmd", "script")


def _settings(ctx: CheckContext) -> Mapping[str, Any]:
    table = ctx.data.get("injection_scan")
    return table if isinstance(table, Mapping) else {}


def _number(ctx: CheckContext, table: str, default: float) -> float:
    """A scalar data table (the rule file's value, or the configuration's)."""
    value = ctx.data.get(table, default)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _limit(ctx: CheckContext) -> int:
    return max(256, int(_number(ctx, "max_content_chars", 4096)))


def read_text(ctx: CheckContext) -> tuple[str, str]:
    """What the agent reads in this event, and where it came from: a ``tool_result``'s content (not
    the echo of a write tool's own text), or an external ``message``/``prompt``; else ``("", "")``."""
    event = ctx.event
    attrs = event.attributes if isinstance(event.attributes, dict) else {}
    cap = MAX_TEXT
    if event.kind == "tool_result":
        content = attrs.get("content")
        if not isinstance(content, str) or not content:
            return "", ""
        own = ctx.data.get("own_output_tools") or ()
        leaf = (event.tool or "").rpartition("__")[2].lower()
        if leaf in own:
            return "", ""
        return content[:cap], event.target or event.tool or "tool output"
    if event.kind not in ("message", "prompt") or not _external(attrs, ctx.data.get("internal_sources") or ()):
        return "", ""
    parts = [event.target or ""]
    parts.extend(attrs[k] for k in ("content", "text", "body") if isinstance(attrs.get(k), str))
    args = event.args if isinstance(event.args, dict) else {}
    parts.extend(args[k] for k in ("content", "text", "body", "message") if isinstance(args.get(k), str))
    source = attrs.get("source") or attrs.get("origin")
    where = f"{event.kind} from {source}" if isinstance(source, str) else f"external {event.kind}"
    return "\n".join(p[:cap] for p in parts if p), where[:80]


def _external(attrs: Mapping[str, Any], internal: Sequence[str]) -> bool:
    if attrs.get("external") is True:
        return True
    source = attrs.get("source") or attrs.get("origin")
    return isinstance(source, str) and source.lower() not in internal


def written_text(ctx: CheckContext) -> str:
    """The new text this action writes: a memory entry, a write tool's new content (old text is not new),
    or the known content a shell command writes into the files its write effects name."""
    memo = ctx.memo.get("prompt_injection.written")
    if isinstance(memo, str):
        return memo
    event = ctx.event
    args = event.args if isinstance(event.args, dict) else {}
    parts: list[str] = []
    for key in _MEMORY_TEXT_KEYS:
        value = bounded_text(args.get(key), MAX_TEXT)
        if value and value not in parts:
            parts.append(value)
    edits = args.get("edits")
    if isinstance(edits, list):
        parts.extend(bounded_text(e.get("new_string"), MAX_TEXT) for e in edits[:50] if isinstance(e, dict))
    if event.kind == "memory_write":
        attrs = event.attributes if isinstance(event.attributes, dict) else {}
        content = bounded_text(attrs.get("content"), MAX_TEXT)
        if content and content not in parts:
            parts.append(content)
        if not any(parts) and event.target:
            parts.append(event.target[:MAX_TEXT])
    command = next((args[k] for k in _SHELL_KEYS if isinstance(args.get(k), str)), None)
    if command is not None:
        parts.extend(_shell_written(command[:MAX_TEXT], _instruction_writes(ctx)))
    text = ctx.memo["prompt_injection.written"] = "\n".join(p for p in parts if p)
    return text


def _written_where(ctx: CheckContext) -> str:
    """What the action writes: its first written path, else the event's target or tool."""
    written = next((e.resource for e in ctx.effects if e.op == "write"), None)
    return written or ctx.event.target or ctx.event.tool or "memory"


#: Path segments of memory directories (the YAML macro ``instruction_write`` names the same ones).
_MEMORY_DIRS: Final = ("memory/", "memories/", ".agent/")


def _instruction_writes(ctx: CheckContext) -> set[str]:
    """The paths this action writes that the agent reads as instructions (class, memory dirs, extra files)."""
    extra = tuple(ctx.data.get("extra_memory_files") or ())
    out = set()
    for e in ctx.effects:
        if e.op != "write":
            continue
        low = e.resource.lower()
        if e.has("agent_instructions") or any(low.startswith(d) or "/" + d in low for d in _MEMORY_DIRS):
            out.add(e.resource)
        elif extra and any(f in low for f in extra):
            out.add(e.resource)
    return out


def _shell_written(command: str, targets: set[str]) -> list[str]:
    """The literal content a command line writes into ``targets`` (echo, printf, heredoc)."""
    if not targets:
        return []
    return [
        w.content
        for w in analyse_shell(command).writes
        if w.content and (w.path in targets or normalise_path(w.path) in targets)
    ]


# -- the checks ---------------------------------------------------------------------------------
def _validate_markers(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    unknown = set(args) - {"text", "table", "families", "min_families", "min_combined"}
    _require(not unknown, f"unknown arg(s) {sorted(unknown)}")
    _require(args.get("text") in ("read", "written"), "`text` must be read or written")
    name = args.get("table", "injection_markers")
    _require(name in data, f"data table {name!r} is not defined")
    compiled = compiled_markers(data[name])
    families = args.get("families")
    if families is not None:
        known = {f.name for f in compiled.families}
        _require(isinstance(families, list) and bool(families), "`families` must be a non-empty list")
        missing = sorted(set(families) - known)
        _require(not missing, f"unknown famil(ies) {missing}; known: {', '.join(sorted(known))}")
    min_families = args.get("min_families", 1)
    _require(isinstance(min_families, int) and min_families >= 1, "`min_families` must be a positive integer")
    min_combined = args.get("min_combined", 0.0)
    _require(isinstance(min_combined, (int, float)) and 0 <= min_combined <= 1, "`min_combined` must be in [0, 1]")


#: The last read text scanned: (event, session, table, (hits, source)) — the detector's pre-check and the
#: rules' checks see the same event one after the other, so it is scanned once.
_LAST_READ: list[Any] = [None, None, None, ([], "")]


def _hits(ctx: CheckContext, which: str, table_name: str) -> tuple[list[Hit], str]:
    """The marker families in the action's read or written text (memoised per action), and the text's source."""
    key = ("prompt_injection.hits", which, table_name)
    found = ctx.memo.get(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    table = ctx.data.get(table_name)
    if which == "read":
        found = read_hits(ctx, table_name)
    else:
        text = written_text(ctx) if table is not None else ""
        found = (scan(text, compiled_markers(table), _limit(ctx)) if text else [], _written_where(ctx))
    ctx.memo[key] = found
    return found


def read_hits(ctx: CheckContext, table_name: str = "injection_markers") -> tuple[list[Hit], str]:
    """The marker families in the text this event reads, and its source; marked text arms the session."""
    table = ctx.data.get(table_name)
    last = _LAST_READ
    if last[0] is ctx.event and last[1] is ctx.session and last[2] is table:
        return last[3]  # type: ignore[no-any-return]
    hits: list[Hit] = []
    text, where = read_text(ctx) if table is not None else ("", "")
    if text:
        hits = scan(text, compiled_markers(table), _limit(ctx))
    if hits:
        _arm(ctx, hits, where)
    last[:] = [ctx.event, ctx.session, table, (hits, where)]
    return hits, where


def instruction_writes(ctx: CheckContext) -> set[str]:
    """The paths this action writes that the agent reads as instructions (see ``_instruction_writes``)."""
    return _instruction_writes(ctx)


def _combined(ctx: CheckContext, hits: Sequence[Hit]) -> float:
    settings = _settings(ctx)
    return combined_score(hits, float(settings.get("family_bonus", 0.05)), float(settings.get("max_combined", 0.8)))


def _arm(ctx: CheckContext, hits: Sequence[Hit], where: str) -> None:
    """Remember the first event whose read content carried injected instructions (bounded: ids and a snippet)."""
    scratch = ctx.session.scratch
    if ARMED_KEY in scratch or _combined(ctx, hits) < float(_settings(ctx).get("arm_at", 0.5)):
        return
    top = hits[0]
    scratch[ARMED_KEY] = (ctx.event.event_id[:128], ctx.event.ts_ms, top[1], where[:80], " ".join(top[3].split())[:60])


#: An effect's detail is shown up to 60 characters (``describe``); the quote must close within them.
_DETAIL_CHARS: Final = 60


def _detail(prefix: str, text: str) -> str:
    """``prefix: "text…"`` short enough to be shown whole, the agent-written part quoted."""
    prefix = prefix[:30]
    return f"{prefix}: {quote(text, max(8, _DETAIL_CHARS - len(prefix) - 5))}"


def _evidence(hits: Sequence[Hit], where: str, op: str) -> tuple[Effect, ...]:
    return tuple(make(op, where, NO_CLASSES, "tool", _detail(h.family, h.snippet)) for h in hits)


@check("injection_markers", validate=_validate_markers)
def injection_markers(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """Marker families in the text the action reads or writes (args: text, families, min_families, min_combined)."""
    args = ctx.args
    which = args["text"]
    hits, where = _hits(ctx, which, args.get("table", "injection_markers"))
    if not hits:
        return None
    families = args.get("families")
    chosen = [h for h in hits if h[1] in families] if families else hits
    if len(chosen) < args.get("min_families", 1) or not chosen:
        return None
    if args.get("min_combined") and _combined(ctx, chosen) < args["min_combined"]:
        return None
    return _evidence(chosen, where, "read" if which == "read" else "write")


def armed_event(session: Any) -> tuple[str, int, str, str, str] | None:
    """The session's first event that carried injected instructions: (event id, ts ms, family, source, snippet)."""
    value = session.scratch.get(ARMED_KEY)
    return value if isinstance(value, tuple) and len(value) == 5 else None


def _validate_after(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    unknown = set(args) - {"table"}
    _require(not unknown, f"unknown arg(s) {sorted(unknown)}")
    _require(args.get("table", "injection_markers") in data, "the markers table is not defined")


@check("after_injection", validate=_validate_after)
def after_injection(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """An earlier event of the session carried injected instructions (within egress_window_s)."""
    _hits(ctx, "read", ctx.args.get("table", "injection_markers"))  # this action's own content may arm, not count
    armed = armed_event(ctx.session)
    if armed is None or armed[0] == ctx.event.event_id:
        return None
    window_s = _number(ctx, "egress_window_s", 0.0)
    if window_s > 0 and ctx.event.ts_ms - armed[1] > window_s * 1000:
        return None
    return (make("read", armed[3], NO_CLASSES, "tool", _detail(f"{armed[2]} in {armed[0]}", armed[4])),)


# -- standing orders in written text -----------------------------------------------------------
def _validate_orders(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    unknown = set(args) - {"kind", "table"}
    _require(not unknown, f"unknown arg(s) {sorted(unknown)}")
    _require(
        args.get("kind") in ("exfil", "remote_code", "secret_disclosure"),
        "`kind` must be exfil, remote_code or secret_disclosure",
    )
    orders = data.get("standing_orders")
    if not isinstance(orders, dict):
        raise ValueError("data table standing_orders (a mapping of regexes) is not defined")
    for key in ("directive", "remote_code", "sensitive", "disclosure"):
        value = orders.get(key)
        if not isinstance(value, str):
            raise ValueError(f"standing_orders.{key} must be a regular expression")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"standing_orders.{key}: {exc}") from None
    _require(args.get("table", "injection_markers") in data, "the markers table is not defined")


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def _rx(pattern: str) -> re.Pattern[str]:
    found = _REGEX_CACHE.get(pattern)
    if found is None:
        if len(_REGEX_CACHE) > 256:
            _REGEX_CACHE.clear()
        found = _REGEX_CACHE[pattern] = re.compile(pattern)
    return found


@check("standing_orders", validate=_validate_orders)
def standing_orders(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """Written text gives a standing order (args: kind = exfil | remote_code | secret_disclosure)."""
    orders = ctx.data["standing_orders"]
    text = written_text(ctx)[: _limit(ctx)]
    if not text:
        return None
    low = text.lower()
    if _rx(orders["directive"]).search(low) is None:
        return None
    where = _written_where(ctx)
    kind = ctx.args["kind"]
    if kind == "exfil":
        hits, _ = _hits(ctx, "written", ctx.args.get("table", "injection_markers"))
        internal = tuple(ctx.data.get("internal_domains") or ())
        sends = [h for h in hits if h[1] in ("exfil_directive", "exfil_secret_directive")]
        sends = [h for h in sends if not any(d in h[3].lower() for d in internal)]
        return _evidence(sends[:1], where, "write") if sends else None
    if kind == "remote_code":
        m = _rx(orders["remote_code"]).search(low)
        return (make("write", where, NO_CLASSES, "tool", _detail("remote code", text[m.start() :])),) if m else None
    if _rx(orders["sensitive"]).search(low) and _rx(orders["disclosure"]).search(low):
        return (make("write", where, NO_CLASSES, "tool", _detail("disclosure", text)),)
    return None


# -- egress ---------------------------------------------------------------------------------
def _validate_table(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    unknown = set(args) - {"table"}
    _require(not unknown, f"unknown arg(s) {sorted(unknown)}")
    name = args.get("table")
    if not isinstance(name, str) or name not in data:
        raise ValueError(f"data table {name!r} is not defined")
    value = data[name]
    _require(
        isinstance(value, list) and all(isinstance(v, str) for v in value),
        f"data table {name!r} must be a list of text",
    )


def _internal(text: str, domains: Sequence[str]) -> bool:
    low = text.lower()
    return any(d in low for d in domains)


@check("outside_destination", validate=_validate_table)
def outside_destination(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """The action's sends and uploads whose destination is not on one of the table's (internal) domains."""
    domains = ctx.data[ctx.args["table"]]
    found = tuple(
        e
        for e in ctx.effects
        if e.op in ("send", "upload") and not _internal(e.resource if e.op == "send" else (e.detail or ""), domains)
    )
    return found or None


_NAME_WORD: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


def _validate_egress(args: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    unknown = set(args) - {"tool_words", "internal", "min_bytes", "min_query_value"}
    _require(not unknown, f"unknown arg(s) {sorted(unknown)}")
    for key in ("tool_words", "internal"):
        name = args.get(key)
        _require(isinstance(name, str) and isinstance(data.get(name), list), f"`{key}` must name a list table")
    for key in ("egress_min_bytes", "egress_min_query_value"):
        value = data.get(key)
        _require(isinstance(value, int) and value >= 1, f"data table {key} must be a positive integer")


@check("egress_without_effect", validate=_validate_egress)
def egress_without_effect(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """An action that sends though its effects show no send: a URL carrying data in its query, or — when
    the effects layer could not say what the action does — a tool named for sending or a large bytes_out."""
    effects = ctx.effects
    if any(e.op in ("send", "upload") for e in effects):
        return None  # the effects say what is sent, and outside_destination judges it
    event = ctx.event
    if event.kind == "tool_result" and ctx.session.kind_counts.get("tool_call"):
        return None  # the feed has tool_call events: the call itself was judged
    target = (event.target or "")[:512]
    if _internal(target, ctx.data[ctx.args["internal"]]):
        return None
    tool = event.tool or ""
    web = target.startswith(("http://", "https://")) or "@" in target[:256]
    classes = endpoint_classes(target) if web else NO_CLASSES
    if "?" in target and _carries_data(target, int(_number(ctx, "egress_min_query_value", 24))):
        return (make("send", target, classes, "tool", "data in the query"),)
    if any(e.op not in ("connect", "download") for e in effects):
        return None  # a local action (a write, a command …): its bytes_out is its input, not an upload
    if event.bytes_out is not None and event.bytes_out >= _number(ctx, "egress_min_bytes", 4096):
        return (make("send", target or tool, classes, "tool", f"{event.bytes_out} bytes out through {tool[:40]}"),)
    words = {w.lower() for w in _NAME_WORD.findall(tool.replace("__", " ")[:120])}
    named = words & set(ctx.data[ctx.args["tool_words"]])
    if named:
        return (make("send", target or tool, classes, "tool", f"{tool[:40]} ({'/'.join(sorted(named))})"),)
    return None


def _carries_data(url: str, min_chars: int) -> bool:
    """A query parameter whose value is long enough to carry data (``?d=<base64>``)."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return False
    return any(len(pair.partition("=")[2]) >= min_chars for pair in query.split("&")[:32])


@check("written_path_in", validate=_validate_table)
def written_path_in(ctx: CheckContext) -> tuple[Effect, ...] | None:
    """The action's writes to a path containing one of the table's fragments (lower-case)."""
    fragments = ctx.data[ctx.args["table"]]
    if not fragments:
        return None
    found = tuple(e for e in ctx.effects if e.op == "write" and any(f in e.resource.lower() for f in fragments))
    return found or None
