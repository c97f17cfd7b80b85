"""Log lines that agent-written text cannot forge.

Exception messages and failure details can carry text an agent wrote (a path, a
command, a webhook's answer, a session id). Printed raw, a newline in it starts a fake
log line, an ANSI sequence rewrites the operator's terminal and a token in an identifier
lands in the log store. :class:`SafeFormatter` redacts secrets
(:func:`agentwatch.respond.redaction.redact`) and escapes control characters in the message, and in
tracebacks everything but their own line breaks.

>>> import logging
>>> record = logging.LogRecord("x", logging.ERROR, __file__, 1, "step failed: %s", ("ok\\nFAKE login\\x1b[31m",), None)
>>> SafeFormatter("%(message)s").format(record)
'step failed: ok\\\\nFAKE login\\\\x1b[31m'
"""

from __future__ import annotations

import logging
import re

from agentwatch.respond.redaction import redact

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CONTROL_AND_NEWLINE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's naming
        record.message = _CONTROL_AND_NEWLINE.sub(_escape, redact(record.message))
        return super().formatMessage(record)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        return _CONTROL.sub(_escape, redact(super().formatException(ei)))


def install(level: int) -> None:
    """Configure the root logger with :class:`SafeFormatter` on stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The audit anchor's line is a record to keep, not chatter: shown at any verbosity.
    logging.getLogger("agentwatch.audit_anchor").setLevel(min(level, logging.INFO))
