"""Log lines that cannot be forged: no control character from a request reaches one.

A strategy key, a symbol or an error message may carry a newline; written as is, it
would start a line of its own that looks like the service's (issue 23). Every handler of
both services and of the workers formats through :class:`SafeLogFormatter`: the record's
line has its control characters escaped (``\\n``, ``\\x1b``, ...), and a traceback keeps
its lines but each is indented by :data:`CONTINUATION`, so no text inside it can begin a
line at the first column the way a record does.
"""

from __future__ import annotations

import logging
import re

CONTINUATION = "  | "
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """``text`` on one line: each control character written as its escape."""
    return _CONTROL.sub(_escaped, text)


def as_continuation(text: str) -> str:
    """A multi-line block (a traceback), each line indented so none can pass for a record."""
    return "\n".join(CONTINUATION + escape_control(line) for line in text.split("\n"))


class EscapingFormatterMixin(logging.Formatter):
    """Escapes what a formatter writes; mixed in before any ``logging.Formatter``."""

    def format(self, record: logging.LogRecord) -> str:
        # Another handler's formatter may have cached the traceback unescaped.
        record.exc_text = None
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_control(super().formatMessage(record))

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return as_continuation(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return as_continuation(super().formatStack(stack_info))


class SafeLogFormatter(EscapingFormatterMixin, logging.Formatter):
    """A ``logging.Formatter`` whose every record is one line, its traceback indented."""
