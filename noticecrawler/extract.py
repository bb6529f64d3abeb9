"""Plain functions that turn one list-page row into values: selection, text, ids, URLs."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

from parsel import Selector, SelectorList
from scrapy.http import TextResponse

#: query parameters that carry paging, search or session state, never identity
JUNK_PARAMS = frozenset(
    {
        "page", "pageindex", "pageno", "page_no", "pagenum", "cpage", "currentpage", "curpage",
        "sca", "sfl", "stx", "sst", "sod", "spt", "searchtype", "searchword", "searchkeyword",
        "searchcnd", "searchwrd", "keyword", "search_keyword", "search_target", "jsessionid",
        "phpsessid", "sid", "listcount", "list_count", "ord", "order", "sort", "category",
    }
)  # fmt: skip

#: tracking parameters added by newsletters, ads and share buttons
TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "igshid", "mc_cid", "mc_eid"})


def is_junk(param: str) -> bool:
    """A query parameter that carries paging, search, session or tracking state."""
    key = param.lower()
    return key in JUNK_PARAMS or key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


_JS_CALL = re.compile(r"[\w$.]+\s*\(((?:[^()'\"]|'[^']*'|\"[^\"]*\")*)\)")
#: the top-level arguments of a call: quoted strings, object literals or bare words
_JS_PARTS = re.compile(r"""\{[^{}]*\}|'[^']*'|"[^"]*"|[^,\s{}]+""")
_JS_PAIR = re.compile(r"""['"]?([\w$]+)['"]?\s*:\s*('[^']*'|"[^"]*"|[^,\s}]+)""")
_WS = re.compile(r"\s+")


def is_xpath(query: str) -> bool:
    return query.startswith(("/", "(", "./", "xpath:"))


def select(node: Selector | SelectorList | TextResponse, query: str) -> SelectorList:
    """CSS by default; XPath when the query starts with ``/``, ``./``, ``(`` or ``xpath:``."""
    if is_xpath(query):
        return node.xpath(query.removeprefix("xpath:"))
    return node.css(query)


def clean_text(parts: list[str]) -> str:
    return _WS.sub(" ", " ".join(parts)).strip()


def text_of(node: Selector | SelectorList | TextResponse, query: str | None) -> str:
    """All the text under the nodes ``query`` selects, whitespace collapsed."""
    if not query:
        return ""
    found = select(node, query)
    if not found:
        return ""
    if query.endswith(("::text", "/text()")) or "::attr(" in query or "/@" in query:
        return clean_text(found.getall())
    return clean_text(found.xpath(".//text()").getall())


def js_args(code: str) -> list[str]:
    """Arguments of the first call in ``javascript:fn_view('12', 'x')`` / an onclick value.

    An object literal argument gives its values in order:
    ``view('board', { no: 12345 })`` -> ``['board', '12345']``.
    """
    m = _JS_CALL.search(code)
    if not m:
        return []
    args: list[str] = []
    for part in _JS_PARTS.findall(m.group(1)):
        if part.startswith("{"):
            args.extend(_unquote_js(value) for _, value in _JS_PAIR.findall(part))
        else:
            args.append(_unquote_js(part))
    return [a for a in args if a != ""]


_SLUG_ID = re.compile(r"^(\d+)[:](\S+)$")


def plain_id(value: str) -> str:
    """The id without a title slug: ``314:some-title-alias`` (Joomla and the like) -> ``314``;
    the slug changes when the title is edited, the number does not."""
    value = value.strip()
    m = _SLUG_ID.match(value)
    return m.group(1) if m else value


def _unquote_js(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def derive_id(rule: str, href: str, link: Selector | None, row: Selector) -> str | None:
    """The post id by the board's rule: ``query:<param>``, ``js[:<n>]``, ``attr:<name>``,
    ``path:<index>`` or ``regex:<pattern>`` (group 1, searched in href then onclick)."""
    kind, _, arg = rule.partition(":")
    onclick = (link.attrib.get("onclick", "") if link is not None else "") or row.attrib.get(
        "onclick", ""
    )
    if kind == "query":
        for key, value in parse_qsl(urlsplit(href).query, keep_blank_values=True):
            if key == arg and value:
                return plain_id(value)
        return None
    if kind == "js":
        n = int(arg or 0)
        for code in (href if href.lower().startswith("javascript:") else "", onclick):
            args = js_args(code)
            if len(args) > n:
                return args[n]
        return None
    if kind == "attr":
        for node in (link, row):
            if node is not None and node.attrib.get(arg):
                return node.attrib[arg].strip()
        found = row.css(f"[{arg}]::attr({arg})").get()
        return found.strip() if found else None
    if kind == "path":
        segments = [s for s in urlsplit(href).path.split("/") if s]
        try:
            return segments[int(arg or -1)]
        except (IndexError, ValueError):
            return None
    if kind == "regex":
        for text in (href, onclick):
            m = re.search(arg, text)
            if m:
                return m.group(1)
        return None
    raise ValueError(f"unknown id rule {rule!r}")


def query_pieces(query: str) -> list[tuple[str, str]]:
    """The ``name=value`` pieces of a query string as written, each with its decoded name."""
    pieces = []
    for piece in query.split("&"):
        if piece:
            name = unquote_plus(piece.partition("=")[0])
            pieces.append((name, piece))
    return pieces


def canonical_url(base: str, href: str, keep: tuple[str, ...] = ()) -> str:
    """Absolute URL of ``href`` without fragments and paging/search/session parameters.

    The parameters that stay are kept exactly as the board wrote them (a value holding ``/``
    or ``:`` is not re-encoded). Parameters named in ``keep`` always stay (a board whose id
    lives in ``page`` is odd but real).
    """
    url = urljoin(base, href.strip())
    parts = urlsplit(url)
    path = re.sub(r";jsessionid=[^/?#]*", "", parts.path, flags=re.I)
    query = "&".join(
        piece for name, piece in query_pieces(parts.query) if name in keep or not is_junk(name)
    )
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def with_query(url: str, **params: str | int) -> str:
    """``url`` with the given query parameters set (others kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items()})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def alternatives(query: str) -> list[str]:
    """A CSS selector list split at its top-level commas (XPath: the query itself)."""
    if not query or is_xpath(query):
        return [query] if query else []
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(query):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(query[start:i].strip())
            start = i + 1
    parts.append(query[start:].strip())
    return [p for p in parts if p]


def select_first(node: Selector, query: str) -> SelectorList:
    """The nodes of the first alternative of ``query`` that matches anything: ``.tit, a``
    prefers ``.tit`` even when an ``a`` wrapping it comes first in the document."""
    for alternative in alternatives(query):
        found = select(node, alternative)
        if found:
            return found
    return SelectorList([])


def first_text(node: Selector, query: str) -> str:
    """The text of the first node the first matching alternative of ``query`` selects."""
    found = select_first(node, query)
    if not found:
        return ""
    if query.endswith(("::text", "/text()")) or "::attr(" in query or "/@" in query:
        return clean_text(found[:1].getall())
    return clean_text(found[0].xpath(".//text()").getall())
