"""JS-link boards (egovframework, K2Web and the many in-house boards like them): the title
link is ``javascript:fn_view('123')``, ``onclick="fn_goDtlView('bbs', '123')"`` or
``javascript:;`` with a ``data-post_no`` attribute, so the id comes from the call (its last
argument with a digit, or ``id = "js:<n>"``) or the attribute (``id = "attr:data-post_no"``),
and the post URL from the catalog's ``detail_url`` template.

Catalog: ``start_url`` and ``detail_url`` (with ``{id}``). Detail pages reached by a form POST:
``options = { detail_form = { nttId = "{id}", bbsId = "B0001" } }`` (see spiders/details.py).
Rows: ``table tbody tr`` by default; pinned rows as in the table engine.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from parsel import Selector
from scrapy.http import TextResponse

from noticecrawler.extract import js_args
from noticecrawler.spiders.engines.table import TableBoardSpider
from noticecrawler.spiders.ids import auto_id

#: where a page from ``detect`` says the board's detail pages live when no convention is known
PLACEHOLDER_DETAIL = "https://example.invalid/board?id={id}"
_EGOV_LIST = re.compile(r"/select(\w*?)List\.do$")
_K2WEB_LIST = re.compile(r"^(/bbs/[^/]+/[^/]+)/artclList\.do$")


_CALL = re.compile(r"([A-Za-z_$][\w$]*)\s*\(")
_URL_EXPR = re.compile(
    r"(?:\.action|\bhref|\blocation(?:\.href)?|\burl)\s*=\s*([^;\n]+)|window\.open\(\s*([^,)]+)"
)
_LITERAL = re.compile(r"""^\s*(?:'([^']*)'|"([^"]*)")\s*$""")


def detail_url_from_script(page: str, base: str) -> str | None:
    """The detail URL template the page's own script builds: the function the links call
    (``jf_viewArtcl('cs', '117301')``) defined on the page as
    ``f.action = '/commonNotice/' + siteId + '/' + artclSeq + '/artclView.do'``: its arguments
    filled in, the post's number as ``{id}``."""
    sel = Selector(text=page)
    for code in sel.css("a::attr(href), a::attr(onclick)").getall():
        call = _CALL.search(code.removeprefix("javascript:"))
        args = js_args(code)
        if call is None or not any(a.isdigit() for a in args):
            continue
        name = re.escape(call.group(1))
        found = re.search(rf"function\s+{name}\s*\(([^)]*)\)\s*\{{(.*?)\n\}}", page, re.S)
        if found is None:
            continue
        params = [p.strip() for p in found.group(1).split(",")]
        post = [a for a in args if a.isdigit()][-1]
        values = dict(zip(params, args, strict=False))
        for expr in _URL_EXPR.finditer(found.group(2)):
            parts, ok = [], True
            for piece in (expr.group(1) or expr.group(2)).split("+"):
                literal = _LITERAL.match(piece)
                word = piece.strip()
                word = word.split(".")[0] if word.split(".")[0] in values else word  # opt.no
                if literal:
                    parts.append(
                        literal.group(1) if literal.group(1) is not None else literal.group(2)
                    )
                elif word in values:
                    parts.append("{id}" if values[word] == post else values[word])
                else:
                    ok = False
                    break
            template = "".join(parts)
            if ok and "{id}" in template:
                return urljoin(base, template)
    return None


def detail_url_for(list_url: str) -> str:
    """The detail URL template the board program's own convention gives for a list URL:
    eGovFrame ``selectBoardList.do?bbsId=…`` -> ``selectBoardArticle.do?bbsId=…&nttId={id}``,
    K2Web ``/bbs/ko/8/artclList.do`` -> ``/bbs/ko/8/{id}/artclView.do``."""
    parts = urlsplit(list_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if m := _K2WEB_LIST.match(parts.path):
        return f"{origin}{m.group(1)}/{{id}}/artclView.do"
    if m := _EGOV_LIST.search(parts.path):
        path = parts.path[: m.start()] + f"/select{m.group(1)}Article.do"
        keep = [f"{k}={v}" for k, v in parse_qsl(parts.query) if k.lower() == "bbsid"]
        return f"{origin}{path}?{'&'.join([*keep, 'nttId={id}'])}"
    return PLACEHOLDER_DETAIL


class JsBoardSpider(TableBoardSpider):
    engine_name = "jsboard"
    fingerprints = (
        r"fn_egov_\w+|jf_viewArtcl|javascript:\s*(?:fn_|go|js)?\w*view\w*\s*\(",
        r"onclick=[\"'][^\"']*view\w*\s*\(|data-(?:post_|ntt_|artcl_)?(?:no|id|seq)=",
    )
    defaults = {
        "row": "table tbody tr",
        "title": "td.subject a, td.title a, td.td-subject a, td.tit a, td.left a",
        "link": "td.subject a, td.title a, td.td-subject a, td.tit a, td.left a",
        "date": "td.date, td.td-date, td.reg, td.regdate",
        "author": "td.writer, td.td-write, td.author",
        "id": "",
        "next": "none",
    }
    required = ("row", "title", "link", "detail_url")

    @classmethod
    def guess_fields(cls, response: TextResponse) -> dict[str, Any]:
        scripted = detail_url_from_script(response.text, response.url)
        return {"detail_url": scripted or detail_url_for(response.url)}

    def row_id(self, row: Selector, link: Selector, href: str) -> str | None:
        return super().row_id(row, link, href) or auto_id(href, link, row)
