"""One function that hides passwords in any text that can carry a connection string.

It covers the three ways a password is written: URL userinfo (``postgresql://u:secret@h/db``,
``redis://:secret@h``), a query parameter (``…?password=secret``) and libpq's ``key=value`` form
(``host=h password=secret`` or ``password='se cret'``). Apply it to every message, log line and
task result that can hold a URL.
"""

from __future__ import annotations

import re

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
