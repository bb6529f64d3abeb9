"""The API's commands (plugged into ``noticecrawler`` by noticecrawler.cli):

noticecrawler api [--host H] [--port P] [--workers N]   serve the HTTP API and /admin/
noticecrawler users token USER [--admin] [--label L]    issue a user's API token (printed once)
noticecrawler users token --admin [--label L]           issue an admin token of no user
noticecrawler users tokens                              list tokens (prefixes only)
noticecrawler users revoke PREFIX                       revoke the tokens with this prefix
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from noticecrawler.db import connect
from noticecrawler.db.settings import database_url

logger = logging.getLogger(__name__)


def add_arguments(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "api",
        help="serve the HTTP API (/v1, /docs) and the operator page (/admin/)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=None, help="default: API_HOST (127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="default: API_PORT (8780)")
    p.add_argument(
        "--workers", type=int, default=1, help="server processes (each with its own pool)"
    )
    p.set_defaults(handler=run)

    # `users` belongs to the notifications commands; the token actions join it
    users = subparsers.choices.get("users")
    if users is None:
        users = subparsers.add_parser("users", help="app users")
        actions = users.add_subparsers(dest="action", required=True)
    else:
        actions = next(a for a in users._actions if isinstance(a, argparse._SubParsersAction))
    token = actions.add_parser("token", help="issue an API token (printed once, stored hashed)")
    token.add_argument("user", nargs="?", help="user id or external id (none: with --admin)")
    token.add_argument("--admin", action="store_true", help="the token may use /v1/admin")
    token.add_argument("--label", default="", help="a note: what the token is for")
    token.set_defaults(handler=issue_token)
    listing = actions.add_parser("tokens", help="list API tokens (prefixes, never the tokens)")
    listing.set_defaults(handler=list_tokens)
    revoke = actions.add_parser("revoke", help="revoke the API tokens with this prefix")
    revoke.add_argument("prefix")
    revoke.set_defaults(handler=revoke_tokens)


def issue_token(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.api import tokens
    from noticecrawler.commands import refs
    from noticecrawler.errors import Refused

    if args.user is None and not args.admin:
        raise Refused("give a USER, or --admin for an admin token of no user")
    with refs.conn(settings) as conn:
        user = refs.optional_user(conn, args.user)
        print(tokens.issue(conn, user, admin=args.admin, label=args.label))
    return 0


def list_tokens(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.api import tokens

    with connect(database_url(settings), autocommit=True) as conn:
        for t in tokens.listing(conn):
            who = f"user {t['user_id']}" if t["user_id"] else "no user"
            state = "revoked" if t["revoked_at"] else "live"
            used = f"{t['last_used_at']:%Y-%m-%d %H:%M}" if t["last_used_at"] else "never"
            print(
                f"{t['prefix']}…  {state:7} {'admin' if t['admin'] else 'user ':5} {who:14} "
                f"used {used}  {t['label'] or ''}"
            )
    return 0


def revoke_tokens(args: argparse.Namespace, settings: Any) -> int:
    from noticecrawler.api import tokens

    with connect(database_url(settings), autocommit=True) as conn:
        n = tokens.revoke(conn, args.prefix.rstrip("…"))
    print(f"{n} token(s) revoked")
    return 0 if n else 1


def factory() -> Any:
    """The app from the project settings (``uvicorn --factory``; each worker process calls it)."""
    from scrapy.utils.project import get_project_settings

    from noticecrawler.api.app import create_app
    from noticecrawler.api.config import from_settings

    return create_app(from_settings(get_project_settings()))


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def run(args: argparse.Namespace, settings: Any) -> int:
    import uvicorn

    from noticecrawler.api.app import create_app
    from noticecrawler.api.config import from_settings

    host = args.host or settings.get("API_HOST", "127.0.0.1")
    port = args.port if args.port is not None else settings.getint("API_PORT", 8780)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "info",
        "proxy_headers": False,
    }
    print(f"API         {url(host, port)}/v1  (docs {url(host, port)}/docs)", flush=True)
    print(f"admin page  {url(host, port)}/admin/", flush=True)
    if args.workers > 1:
        # each worker process builds its app from the settings (-s overrides do not reach it)
        uvicorn.run(
            "noticecrawler.api.command:factory", factory=True, workers=args.workers, **common
        )
        return 0
    uvicorn.Server(uvicorn.Config(create_app(from_settings(settings)), **common)).run()
    return 0
