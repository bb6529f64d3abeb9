"""The operator page's HTML: server-rendered, no script, no build step; a small inline SVG
bar chart per board."""

from __future__ import annotations

from datetime import date, timedelta
from html import escape
from typing import Any

from noticecrawler.health import Health

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:middle}th{background:#f4f4f4}
.ok{color:#17692b}.failing{color:#b3261e;font-weight:600}.stale{color:#a15c00}.never{color:#666}
.cards{display:flex;gap:1rem;margin:1rem 0}.card{border:1px solid #ddd;border-radius:6px;
padding:.6rem 1rem}.card b{font-size:1.3rem}.err{max-width:28rem;color:#b3261e;
word-break:break-word}.note{background:#eef6ee;padding:.5rem}.fail{background:#fbeaea}
svg rect{fill:#3b6fb6}button{cursor:pointer}
"""


def _layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def login(message: str = "") -> str:
    note = f"<p class='note fail'>{escape(message)}</p>" if message else ""
    return _layout(
        "noticecrawler: sign in",
        "<h1>noticecrawler operator page</h1>"
        f"{note}<form method=post action='/admin/login'>"
        "<label>Admin token <input type=password name=token id=token autocomplete=off "
        "size=50></label> <button type=submit id=signin>Sign in</button></form>",
    )


def days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def chart(counts: list[int], labels: list[date]) -> str:
    """Bars, one per day (oldest left); each bar's title tells the day and the count."""
    width, height, bar = 14 * len(counts), 30, 12
    top = max(counts) or 1
    bars = []
    for i, (n, day) in enumerate(zip(counts, labels, strict=True)):
        h = max(1, round(height * n / top)) if n else 0
        bars.append(
            f"<rect x='{i * 14}' y='{height - h}' width='{bar}' height='{h}'>"
            f"<title>{day.isoformat()}: {n}</title></rect>"
        )
    return (
        f"<svg class=chart width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"role=img aria-label='new posts per day, last {len(counts)} days: "
        f"{' '.join(str(n) for n in counts)}'>"
        f"<line x1='0' y1='{height - 0.5}' x2='{width}' y2='{height - 0.5}' stroke='#bbb'/>"
        f"{''.join(bars)}</svg>"
    )


def dashboard(
    report: list[Health],
    last_runs: dict[str, dict[str, Any]],
    per_day: dict[str, list[int]],
    labels: list[date],
    outbox: dict[str, Any],
    outcomes: dict[str, int],
    message: str = "",
    failed: bool = False,
) -> str:
    rows = []
    for h in report:
        run = last_runs.get(h.board) or {}
        when = run.get("finished_at") or run.get("started_at")
        last = (
            f"{when:%Y-%m-%d %H:%M:%S} UTC · {escape(str(run.get('finish_reason') or 'running'))}"
            f" · new {run.get('new', 0)}"
            if when
            else "never"
        )
        error = run.get("error_detail") or ""
        counts = per_day.get(h.board, [0] * len(labels))
        rows.append(
            f"<tr data-board='{escape(h.board)}'>"
            f"<td class=board>{escape(h.board)}</td>"
            f"<td class='state {h.status}'>{h.status}</td>"
            f"<td class=last-run>{last}</td>"
            f"<td class='last-error err'>{escape(error)}</td>"
            f"<td class=per-day>{chart(counts, labels)} <small>{sum(counts)}</small></td>"
            f"<td><form method=post action='/admin/boards/{escape(h.board)}/crawl'>"
            "<button type=submit>crawl now</button></form></td></tr>"
        )
    pushes = (
        " ".join(
            f"<span class=outcome data-status='{escape(s)}'>{escape(s)} <b>{n}</b></span>"
            for s, n in sorted(outcomes.items())
        )
        or "none"
    )
    note = f"<p class='note{' fail' if failed else ''}'>{escape(message)}</p>" if message else ""
    body = (
        "<h1>noticecrawler</h1>"
        f"{note}<div class=cards>"
        f"<div class=card id=outbox>outbox: <b>{outbox['waiting']}</b> waiting, "
        f"<b>{outbox['planning']}</b> being planned</div>"
        f"<div class=card id=pushes>pushes, last 24 h: {pushes}</div></div>"
        "<table id=boards><thead><tr><th>board</th><th>health</th><th>last run</th>"
        f"<th>last error</th><th>new posts per day, {len(labels)} days</th><th></th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
        "<p><a href='/docs'>API docs</a> · <form method=post action='/admin/logout' "
        "style=display:inline><button type=submit>sign out</button></form></p>"
    )
    return _layout("noticecrawler: operator page", body)
