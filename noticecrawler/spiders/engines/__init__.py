"""Board engines: one platform base spider per kind of board software.

Each engine registers itself by setting ``engine_name`` (see ``spiders/base.py``); importing this
package defines them all. ``ENGINES`` maps the ``engine`` name a catalog entry gives to its base
spider class; each engine's module docstring lists its catalog fields and quirks (docs/engines.md
gathers them).
"""

from __future__ import annotations

from noticecrawler.spiders.base import ENGINES
from noticecrawler.spiders.engines import (  # noqa: F401  (defining an engine registers it)
    feed,
    gnuboard,
    jsboard,
    listboard,
    table,
    wordpress,
    xe,
    zeroboard,
)

__all__ = ["ENGINES"]
