"""Post ids and URLs when the catalog row does not spell out the rule."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from parsel import Selector

from noticecrawler.extract import js_args, plain_id, query_pieces

#: query parameters that carry a post's id on the board programs we know, most specific first
ID_PARAMS = (
    "wr_id", "document_srl", "nttid", "nttsn", "nttno", "artclid", "articleno", "article_no",
    "bdid", "bbsidx",
    "board_seq", "boardseq", "seq", "idx", "bno", "no", "num", "uid", "id", "p", "post_id",
)  # fmt: skip
_DATA_ID = re.compile(r"^data-(?:[\w-]*[_-])?(?:no|id|idx|seq|srl|sn|num)$", re.IGNORECASE)
_TOKEN = re.compile(r"^[\w.-]{1,64}$")
_NODE_ID = re.compile(r"^(?:node|post|article|entry|item|bbs|notice)[-_](\d+)$")
_PAGE_EXT = re.compile(r"\.(?:html?|php|aspx?|jsp)$", re.IGNORECASE)
_PATH_ID = re.compile(r"^(\d+)(?:-(?=[^\d-])[\w-]*)?$")


def auto_id(href: str, link: Selector, row: Selector) -> str | None:
    """A best guess at a row's post id: a known id parameter of the link, a numeric last
    path segment, the argument of a ``javascript:`` call or onclick, then a ``data-*no|id|seq``
    attribute of the link or the row."""
    if href and not href.lower().startswith(("javascript", "#")):
        params = {k.lower(): plain_id(v) for k, v in parse_qsl(urlsplit(href).query) if v}
        for key in ID_PARAMS:
            if key in params and _TOKEN.match(params[key]):
                return params[key]
        segments = [s for s in urlsplit(href).path.split("/") if s]
        # /notice/120 or /news/314-some-title-alias, not /2026/11/slug.html
        if segments and (m := _PATH_ID.match(segments[-1])):
            return m.group(1)
    for code in (href if href.lower().startswith("javascript") else "", link.attrib.get("onclick")):
        args = [a for a in js_args(code or "") if _TOKEN.match(a)]
        # fn_view('kr', '12', '345'): the post's number comes last; fn_view('345', 'BBS_01'):
        # the only all-digit argument; fn_view('A0091'): the first argument with a digit
        digits = [a for a in args if a.isdigit()]
        mixed = [a for a in args if any(c.isdigit() for c in a)]
        if digits or mixed:
            return digits[-1] if digits else mixed[0]
    # the link, the elements around it inside the row (a Drupal <article data-history-node-id>,
    # WordPress-like id="node-455"), then the row
    for node in _link_to_row(link, row):
        for name, value in node.attrib.items():
            if _DATA_ID.match(name) and value.strip():
                return value.strip()
        if m := _NODE_ID.match(node.attrib.get("id", "")):
            return m.group(1)
    return None


def _link_to_row(link: Selector, row: Selector) -> list[Selector]:
    nodes = [link]
    if link.root is not row.root and hasattr(link.root, "iterancestors"):
        for depth, element in enumerate(link.root.iterancestors()):
            if element is row.root or depth >= 6:
                break
            nodes.append(Selector(root=element))
    return [*nodes, row]


def slug_id(href: str) -> str | None:
    """For a link with no id of a known form (``/news/some-title/``, ``/press/24.html``): the
    last path segment, which names the post."""
    if not href or href.lower().startswith(("javascript", "#")):
        return None
    segments = [s for s in urlsplit(href).path.split("/") if s]
    if segments and _TOKEN.match(last := _PAGE_EXT.sub("", segments[-1])):
        return last
    return None


def keep_only(url: str, params: tuple[str, ...]) -> str:
    """``url`` with only the query parameters named in ``params``, in that order, each as
    the board wrote it."""
    parts = urlsplit(url)
    pieces = {name: piece for name, piece in query_pieces(parts.query) if "=" in piece}
    kept = [pieces[k] for k in params if k in pieces and not pieces[k].endswith("=")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))
