"""The project's expected failures, and the one line each is reported with.

A command that hits one of these (a malformed catalog, an unreachable or unmigrated database,
an unreachable broker, an unknown board or record) ends with that line on stderr and exit
status 2, never a traceback. ``one_line`` says whether an exception is such a failure.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from noticecrawler.redaction import redact

#: exit status of a command stopped by an expected failure
EXIT_FAILURE = 2

MIGRATE_HINT = "database not migrated: run noticecrawler db upgrade"


class ProjectError(Exception):
    """An expected failure whose message says what and where, in one line."""


class NotFound(ProjectError):
    """A user, device, post … that the command was asked about does not exist."""


class Refused(ProjectError):
    """Input the command refuses (the message says why)."""


class UnknownBoard(NotFound):
    def __init__(self, name: str, known: Iterable[str]):
        names = sorted(known)
        shown = ", ".join(names[:20]) + (f", … ({len(names)} in all)" if len(names) > 20 else "")
        super().__init__(f"unknown board {name!r}; known: {shown or 'none'}")
        self.name = name


def one_line(exc: BaseException) -> str | None:
    """The line that reports ``exc`` when it is an expected failure of the project, else None.

    Passwords are masked in the line."""
    line = _describe(exc)
    if line is None:
        return None
    first = " ".join(line.split())  # one line, whatever the message held
    return redact(first)


def _describe(exc: BaseException) -> str | None:
    import psycopg

    if isinstance(exc, ProjectError):
        return str(exc)
    # a CatalogError can only exist once the catalog module is loaded (no import needed here)
    catalog = sys.modules.get("noticecrawler.catalog")
    if catalog is not None and isinstance(exc, catalog.CatalogError):
        return str(exc)
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return MIGRATE_HINT
    if isinstance(exc, psycopg.OperationalError):
        reason = (str(exc).strip().splitlines() or [""])[0].removeprefix("connection failed: ")
        return f"cannot reach PostgreSQL: {reason}"
    broker = _broker_error(exc)
    if broker is not None:
        return broker
    return None


def _broker_error(exc: BaseException) -> str | None:
    try:
        from kombu.exceptions import OperationalError as KombuError
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover - both ship with the project
        return None
    if isinstance(exc, KombuError | RedisConnectionError):
        reason = (str(exc).strip().splitlines() or [""])[0]
        return f"cannot reach the Celery broker: {reason}"
    return None
