"""One function that hides passwords in any text that can carry a connection string.

It covers the three ways a password is written: URL userinfo (``postgresql://u:secret@h/db``,
``redis://:secret@h``), a query parameter (``…?password=secret``) and libpq's ``key=value`` form
(``host=h password=secret`` or ``password='se cret'``). Apply it to every message, log line and
task result that can hold a URL.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

# scheme://user:PASSWORD@  (the password may hold anything but @ and whitespace)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@]+(?=@)")
# password=PASSWORD in a query string or a libpq string; quoted libpq values may hold spaces
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|requirepass)\s*=\s*)"
    r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&'\"]+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every password it contains replaced by ``***``."""
    text = _USERINFO.sub(lambda m: m["head"] + MASK, text)
    return _KEY_VALUE.sub(lambda m: m["head"] + MASK, text)


def redact_value(value: Any) -> Any:
    """``value`` with passwords masked in every string inside it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


_installed = False


def install_log_redaction() -> None:
    """Mask passwords in every log record this process creates from now on (its message,
    arguments and traceback), whichever library logs it. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()
    formatter = logging.Formatter()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging to report
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(formatter.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting_record)
