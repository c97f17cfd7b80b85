"""Agent-written text made inert for Slack ``mrkdwn``.

Everything an agent wrote (alert summaries and reasons quote it; agent and session ids,
principals and paths come from its events) is hostile input. Before it reaches a Slack
message it goes through :func:`mrkdwn`, which, in order:

1. redacts secrets (:func:`agentwatch.respond.redaction.redact`);
2. drops control, zero-width and bidirectional-override characters (newlines are kept
   only where the caller allows them);
3. escapes ``&``, ``<`` and ``>`` as Slack asks (``&amp;``, ``&lt;``, ``&gt;``), which
   disarms every ``<!channel>``, ``<!here>``, ``<!everyone>``, ``<@U…>``, ``<#C…>``,
   ``<!subteam^…>``, ``<!date^…>`` and disguised link ``<url|text>`` — and a leading
   ``>`` quote;
4. replaces the mrkdwn markers ``* _ ~ ` `` with look-alikes (``∗ ＿ ∼ ˋ``) — Slack has no
   escape for them — except inside redaction markers (``[REDACTED:github_token]``), which
   are ours: a secret is removed by step 1, never merely disguised by this one;
5. breaks raw ``@here``/``@channel``/``@everyone`` (and any ``@word``) with a word
   joiner, so no client or ``link_names`` setting turns them into mentions;
6. caps the length (Slack's section text limit is 3000 characters) without cutting an
   escape sequence in half.

>>> mrkdwn("<!channel> *urgent* see <https://evil.example|the docs> @here & ~x~ `rm -rf`")
'&lt;!channel&gt; ∗urgent∗ see &lt;https://evil.example|the docs&gt; @\\u2060here &amp; ∼x∼ ˋrm -rfˋ'
>>> mrkdwn("token=ghp_" + "a" * 36 + " agent_ghp_" + "b" * 36)
'token=[REDACTED:github_token] agent＿[REDACTED:github_token]'
>>> len(mrkdwn("x" * 5000, limit=100))
100

:func:`plain` is the variant for ``plain_text`` objects (button labels, headers), which
Slack renders literally: redaction, character cleaning and the cap, no escaping.
"""

from __future__ import annotations

import re
from typing import Final

from agentwatch.respond.redaction import redact

#: Slack's limit for a section block's text (and a message's fallback text we send).
SECTION_LIMIT: Final = 3000
#: Slack's limit for one section field.
FIELD_LIMIT: Final = 2000
ELLIPSIS: Final = "…"

_LOOKALIKES: Final = str.maketrans({"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u02cb"})
# C0/C1 controls (but \t, \n), zero-width and bidi formatting characters, BOM.
_INVISIBLE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_MENTION_AT: Final = re.compile(r"@(?=\w)")
_PARTIAL_ENTITY: Final = re.compile(r"&[a-z]{0,3}$")
_MARKER: Final = re.compile(r"(\[REDACTED:[a-z]{1,20}(?:_[a-z]{1,20}){0,3}\])")
_SPACES: Final = re.compile(r"[ \t\r\n]+")


def clean(text: object, *, newlines: bool = False) -> str:
    """Redacted, printable text: control and invisible characters removed."""
    value = redact(str(text if text is not None else ""))
    value = _INVISIBLE.sub("", value)
    if newlines:
        lines = [_SPACES.sub(" ", line).strip() for line in value.splitlines()]
        return "\n".join(line for line in lines if line)
    return _SPACES.sub(" ", value).strip()


def mrkdwn(text: object, limit: int = SECTION_LIMIT, *, newlines: bool = False) -> str:
    """``text`` safe to embed in a mrkdwn text object: no mention, link or formatting.

    >>> mrkdwn("<@U024BE7LH> <#C024BE7LR|general> <!subteam^SAZ94GDB8> _x_")
    '&lt;@\\u2060U024BE7LH&gt; &lt;#C024BE7LR|general&gt; &lt;!subteam^SAZ94GDB8&gt; ＿x＿'
    """
    value = clean(text, newlines=newlines)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = "".join(part if i % 2 else part.translate(_LOOKALIKES) for i, part in enumerate(_MARKER.split(value)))
    value = _MENTION_AT.sub("@\u2060", value)
    return cap(value, limit)


def plain(text: object, limit: int = 75) -> str:
    """``text`` for a ``plain_text`` object (rendered literally by Slack), capped.

    >>> plain("Approve <!here> " + "x" * 100, limit=20)
    'Approve <!here> xxx…'
    """
    return cap(clean(text), limit)


def cap(value: str, limit: int) -> str:
    """At most ``limit`` characters, ending in ``…`` when cut; never half an ``&…;`` escape."""
    if len(value) <= limit:
        return value
    cut = value[: max(0, limit - len(ELLIPSIS))]
    cut = _PARTIAL_ENTITY.sub("", cut)
    return cut + ELLIPSIS
