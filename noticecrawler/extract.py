"""Plain functions that turn one list-page row into values: selection, text, ids, URLs."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from parsel import Selector, SelectorList

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


_JS_CALL = re.compile(r"[\w$.]+\s*\(([^)]*)\)")
_JS_ARG = re.compile(r"""\s*(?:'([^']*)'|"([^"]*)"|([^,\s]+))\s*""")
_WS = re.compile(r"\s+")


def is_xpath(query: str) -> bool:
    return query.startswith(("/", "(", "./", "xpath:"))


def select(node: Selector | SelectorList, query: str) -> SelectorList:
    """CSS by default; XPath when the query starts with ``/``, ``./``, ``(`` or ``xpath:``."""
    if is_xpath(query):
        return node.xpath(query.removeprefix("xpath:"))
    return node.css(query)


def clean_text(parts: list[str]) -> str:
    return _WS.sub(" ", " ".join(parts)).strip()


def text_of(node: Selector | SelectorList, query: str | None) -> str:
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
    """Arguments of the first call in ``javascript:fn_view('12', 'x')`` / an onclick value."""
    m = _JS_CALL.search(code)
    if not m:
        return []
    args: list[str] = []
    for part in m.group(1).split(","):
        am = _JS_ARG.fullmatch(part)
        if am:
            args.append(next(g for g in am.groups() if g is not None))
    return [a for a in args if a != ""]


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
                return value
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


def canonical_url(base: str, href: str, keep: tuple[str, ...] = ()) -> str:
    """Absolute URL of ``href`` without fragments and paging/search/session parameters.

    Parameters named in ``keep`` always stay (a board whose id lives in ``page`` is odd but real).
    """
    url = urljoin(base, href)
    parts = urlsplit(url)
    path = re.sub(r";jsessionid=[^/?#]*", "", parts.path, flags=re.I)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k in keep or not is_junk(k)
    ]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def with_query(url: str, **params: str | int) -> str:
    """``url`` with the given query parameters set (others kept)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items()})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
