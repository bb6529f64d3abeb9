"""HTML and RSS of the demo boards. Pure functions of a board and the clock.

The class names of the list page (``table.board-list``, ``tr.notice``, ``td.title``,
``td.date``, ``div.paging a.next``…) are what the catalog's ``demo`` boards select: keep them.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from html import escape
from xml.sax.saxutils import escape as xml_escape

from noticecrawler.demo.content import SEOUL, DemoPost
from noticecrawler.demo.state import Board

PAGE_SIZE = 10
RSS_SIZE = 20


def page_count(board: Board) -> int:
    return max(1, -(-len(board.regular()) // PAGE_SIZE))


def _head(title: str, charset: str | None) -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    return (
        f'<!DOCTYPE html><html lang="ko"><head>{meta}<title>{escape(title)}</title></head><body>\n'
    )


def _list_date(post: DemoPost, now: datetime) -> str:
    published = post.published.astimezone(SEOUL)
    if not post.pinned and published.date() == now.astimezone(SEOUL).date():
        return published.strftime("%H:%M")
    return published.strftime("%Y.%m.%d")


def _file_links(board: str, post: DemoPost) -> list[str]:
    return [
        f'<a href="/{board}/download?no={post.no}&amp;file={i}">{escape(name)}</a>'
        for i, name in enumerate(post.files, start=1)
    ]


def _row(board: str, post: DemoPost, page: int, now: datetime) -> str:
    href = f"/{board}/view?no={post.no}&amp;page={page}"
    title = f'<a href="{href}">{escape(post.title)}</a>'
    if post.files:
        title += f' <span class="attach">{" ".join(_file_links(board, post))}</span>'
    num = '<span class="badge">공지</span>' if post.pinned else str(post.no)
    tr = '<tr class="notice">' if post.pinned else "<tr>"
    return (
        f"{tr}"
        f'<td class="num">{num}</td><td class="category">{escape(post.category)}</td>'
        f'<td class="title">{title}</td><td class="author">{escape(post.author)}</td>'
        f'<td class="date">{_list_date(post, now)}</td><td class="hits">{post.hits}</td></tr>\n'
    )


def _paging(page: int, pages: int) -> str:
    links = []
    if 1 < page <= pages:
        links.append(f'<a href="?page={page - 1}" class="prev">이전</a>')
    for n in range(1, pages + 1):
        links.append(
            f'<a href="?page={n}" class="on">{n}</a>'
            if n == page
            else f'<a href="?page={n}">{n}</a>'
        )
    if page < pages:
        links.append(f'<a href="?page={page + 1}" class="next">다음</a>')
    return f'<div class="paging">{" ".join(links)}</div>\n'


def render_list(board: Board, page: int, now: datetime, charset: str | None) -> str:
    """List page ``page`` (1-based); past the last page, only a ``tr.empty`` row."""
    pages = page_count(board)
    start = (page - 1) * PAGE_SIZE
    if page > pages:
        posts: list[DemoPost] = []
    else:
        posts = board.pinned() + board.regular()[start : start + PAGE_SIZE]
    if board.broken:
        return _render_list_broken(board, posts, page, pages, now, charset)
    rows = "".join(_row(board.name, post, page, now) for post in posts)
    if not posts:
        rows = '<tr class="empty"><td colspan="6">게시물이 없습니다</td></tr>\n'
    return (
        _head(f"{board.name} 공지사항", charset)
        + '<div class="board"><h2>공지사항</h2>\n<table class="board-list"><thead><tr>'
        "<th>번호</th><th>분류</th><th>제목</th><th>작성자</th><th>작성일</th><th>조회</th>"
        f"</tr></thead>\n<tbody>\n{rows}</tbody></table>\n"
        + _paging(page, pages)
        + "</div></body></html>\n"
    )


def _render_list_broken(
    board: Board,
    posts: list[DemoPost],
    page: int,
    pages: int,
    now: datetime,
    charset: str | None,
) -> str:
    """The "redesigned" list: no table at all, so ``table.board-list tbody tr`` matches 0 rows."""
    items = []
    for post in posts:
        cls = "item notice" if post.pinned else "item"
        items.append(
            f'<div class="{cls}"><a class="subject" href="/{board.name}/view?no={post.no}">'
            f'{escape(post.title)}</a><span class="meta">{escape(post.category)} · '
            f"{escape(post.author)} · {_list_date(post, now)}</span></div>\n"
        )
    return (
        _head(f"{board.name} 공지사항", charset)
        + '<div class="board-v2"><h2>공지사항</h2>\n'
        + f'<div class="list-new">\n{"".join(items)}</div>\n'
        + _paging(page, pages)
        + "</div></body></html>\n"
    )


def render_view(board: Board, post: DemoPost, charset: str | None) -> str:
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in post.body.splitlines())
    files = "".join(f"<li>{link}</li>" for link in _file_links(board.name, post))
    published = post.published.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M:%S")
    return (
        _head(f"{post.title} - {board.name} 공지사항", charset)
        + f'<div class="view"><h3 class="view-title">{escape(post.title)}</h3>'
        f'<span class="view-category">{escape(post.category)}</span>'
        f'<span class="view-date">{published}</span>'
        f'<span class="view-author">{escape(post.author)}</span>'
        f'<div class="view-content">{paragraphs}</div>'
        f'<ul class="view-files">{files}</ul>'
        f'<a class="view-list" href="/{board.name}/list">목록</a></div>\n'
        "</body></html>\n"
    )


def render_rss(board: Board, base_url: str) -> str:
    """RSS 2.0 of the ``RSS_SIZE`` newest posts (pinned ones included, by date)."""
    posts = sorted(board.posts.values(), key=lambda p: (p.published, p.no), reverse=True)
    items = []
    for post in posts[:RSS_SIZE]:
        url = xml_escape(f"{base_url}/{board.name}/view?no={post.no}")
        summary = post.body.splitlines()[0] if post.body else ""
        items.append(
            f"<item><title>{xml_escape(post.title)}</title><link>{url}</link>"
            f'<guid isPermaLink="true">{url}</guid>'
            f"<pubDate>{format_datetime(post.published.astimezone(SEOUL))}</pubDate>"
            f"<category>{xml_escape(post.category)}</category>"
            f"<description>{xml_escape(summary)}</description></item>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>\n'
        f"<title>{xml_escape(board.name)} 공지사항</title>"
        f"<link>{xml_escape(f'{base_url}/{board.name}/list')}</link>"
        f"<description>{xml_escape(board.name)} 공지사항 (noticecrawler demo)</description>"
        f"<language>ko</language>"
        f"<lastBuildDate>{format_datetime(board.last_modified, usegmt=True)}</lastBuildDate>\n"
        f"{''.join(items)}</channel></rss>\n"
    )


def render_index(names: list[str]) -> str:
    links = "".join(f'<li><a href="/{n}/list">{escape(n)}</a></li>' for n in names)
    return (
        _head("noticecrawler demo boards", "utf-8") + "<h1>noticecrawler demo boards</h1>"
        "<p>Any <code>/&lt;board&gt;/list</code> ([a-z0-9_-]+) is a board, created on first use; "
        "names ending in <code>-euckr</code> or <code>-nocharset</code> are served in CP949.</p>"
        f"<ul>{links}</ul></body></html>\n"
    )
