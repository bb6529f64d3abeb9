"""A fast JSON response for rows straight from the database (datetimes as ISO 8601)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from fastapi.responses import Response


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_response(data: Any, status_code: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)
    return Response(body.encode("utf-8"), status_code, media_type="application/json")
