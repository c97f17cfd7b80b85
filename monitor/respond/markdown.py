"""Markdown-escaping of agent-written text, shared by every human-facing report.

Agent text (targets, reasons, ids) goes into Markdown tables and lists in evidence
summaries and postmortems. :func:`escape_md` makes it inert there: it cannot end a
table cell (``|``, line breaks), open a code span (backticks), form a link or image
(``[``, ``]``, ``(``, ``)``), emit HTML or a Slack-style ``<!channel>`` (``<``, ``>``, ``&`` become
entities), start a heading, quote or list, or hide itself with control and
bidirectional-override characters (shown as ``⟨U+XXXX⟩``). Bare ``https://`` URLs
stay visible text (GFM may autolink them; they are shown, never disguised).

Never put escaped text inside a code span: backslash escapes do not apply there.
"""

from __future__ import annotations

import re
from typing import Final

#: What a report shows in place of a line break inside agent text.
LINE_BREAK_MARK: Final = "↵"
ELLIPSIS: Final = "…"

_LINE_BREAKS: Final = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
# C0/C1 controls (tab excepted), zero-width characters, bidi embeddings/overrides/isolates, BOM,
# lone surrogates (which could not be written as UTF-8).
_INVISIBLE: Final = re.compile(
    r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]"
)
_HTML: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_PUNCT: Final = re.compile(r"([\\`*_\[\]()|~#$])")
_LEADING_BLOCK: Final = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")


def escape_md(text: object, limit: int | None = None) -> str:
    """``text`` as inert Markdown inline text, optionally cut to ``limit`` characters.

    ``None`` becomes the empty string; other non-strings are formatted with ``str``.
    The cut happens before escaping (``limit`` counts the agent's characters, and an
    escape is never split) and is marked with ``…``.

    >>> escape_md("a|b `c` [x](javascript:alert(1)) <!channel>")
    'a\\\\|b \\\\`c\\\\` \\\\[x\\\\]\\\\(javascript:alert\\\\(1\\\\)\\\\) &lt;!channel&gt;'
    >>> escape_md("line one\\nline two")
    'line one↵line two'
    >>> escape_md("x" * 10, limit=4)
    'xxxx…'
    >>> escape_md("- not a list"), escape_md("1. not a list")
    ('\\\\- not a list', '1\\\\. not a list')
    >>> escape_md("evil\\u202etxt.exe")
    'evil⟨U+202E⟩txt.exe'
    """
    if text is None:
        return ""
    s = text if isinstance(text, str) else str(text)
    s = _LINE_BREAKS.sub(LINE_BREAK_MARK, s).replace("\t", " ")
    s = _INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", s)
    if limit is not None and len(s) > limit:
        s = s[:limit] + ELLIPSIS
    s = _PUNCT.sub(r"\\\1", s.translate(_HTML))
    return _LEADING_BLOCK.sub(_escape_leading, s, count=1)


def _escape_leading(m: re.Match[str]) -> str:
    lead, marker = m.group(1), m.group(2)
    if marker.isdigit():
        # "1." / "1)" opens an ordered list: escape the punctuation after the digits.
        return lead + marker + "\\"
    return lead + "\\" + marker


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A GFM table from already-escaped cell strings (no escaping is done here).

    >>> print(md_table(["a", "b"], [["1", "2"]]))
    | a | b |
    | --- | --- |
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines.extend("| " + " | ".join(cell or " " for cell in row) + " |" for row in rows)
    return "\n".join(lines)
