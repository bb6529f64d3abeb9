"""Catalog entries for boards of the demo server, for tests, benchmarks and demos.

The packaged catalog's `demo` entry uses the same selectors; this renders more such boards
(the demo server serves any board name under its own path).
"""

from __future__ import annotations

import json

#: how the demo server's list pages are read (a table board with a `공지` badge on pinned rows)
DEMO_BOARD_FIELDS: dict[str, object] = {
    "engine": "table",
    "row": "table.board-list tbody tr",
    "title": "td.title > a",
    "link": "td.title > a",
    "date": "td.date",
    "pinned": "span.badge",
    "id": "query:no",
    "next": "param:page",
}


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def board_entry(name: str, path: str | None = None, **fields: object) -> str:
    """A ``[[board]]`` entry named ``name`` for the demo board at ``{demo}/<path>/list``
    (``path`` defaults to the name); ``fields`` add to or override the demo selectors."""
    values = {
        "name": name,
        "start_url": f"{{demo}}/{path or name}/list",
        **DEMO_BOARD_FIELDS,
        **fields,
    }
    return "[[board]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in values.items()) + "\n"
