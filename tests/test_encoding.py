import pytest
from scrapy.http import HtmlResponse, TextResponse, XmlResponse

from noticecrawler.encoding import declared_charset, decode_bytes, fix_encoding

URL = "https://board.example.ac.kr/notice/list"
# "똠", "뷁" and "햏" exist in CP949 only, not in the 2,350 syllables of strict EUC-KR.
TITLE = "[학사] 똠방각하 뷁 햏 장학금 신청 안내"
SHORT_TITLE = "학사 공지"  # short enough that charset-normalizer guesses it wrong
EUC_KR_LABELS = ["euc-kr", "EUC-KR", "EUC_KR", "ks_c_5601-1987", "x-windows-949", "windows-949"]


def page(title: str = TITLE, meta: str | None = None) -> str:
    head = f'<meta http-equiv="Content-Type" content="text/html; charset={meta}">' if meta else ""
    return f"<html><head>{head}<title>{title}</title></head><body></body></html>"


def feed(title: str = TITLE, declared: str = "euc-kr") -> str:
    return (
        f'<?xml version="1.0" encoding="{declared}"?>\n'
        f"<rss><channel><item><title>{title}</title></item></channel></rss>"
    )


def html(body: bytes, charset: str | None = None) -> HtmlResponse:
    headers = {"Content-Type": f"text/html; charset={charset}" if charset else "text/html"}
    return HtmlResponse(url=URL, body=body, headers=headers)


def title_of(response: TextResponse) -> str | None:
    return response.xpath("//title/text()").get()


# case 1: declared EUC-KR in any spelling, bytes are CP949
@pytest.mark.parametrize("label", EUC_KR_LABELS)
@pytest.mark.parametrize("title", [TITLE, SHORT_TITLE])
def test_declared_euc_kr_in_header_reads_cp949(label: str, title: str) -> None:
    fixed = fix_encoding(html(page(title).encode("cp949"), charset=label))
    assert title_of(fixed) == title
    assert fixed.encoding == "cp949"


@pytest.mark.parametrize("label", EUC_KR_LABELS)
@pytest.mark.parametrize("title", [TITLE, SHORT_TITLE])
def test_declared_euc_kr_in_meta_reads_cp949(label: str, title: str) -> None:
    fixed = fix_encoding(html(page(title, meta=label).encode("cp949")))
    assert title_of(fixed) == title
    assert fixed.encoding == "cp949"


@pytest.mark.parametrize("label", ["euc-kr", "EUC_KR", "ks_c_5601-1987"])
def test_w3lib_already_maps_known_euc_kr_labels_to_cp949(label: str) -> None:
    response = html(page().encode("cp949"), charset=label)
    assert response.encoding == "cp949"
    assert fix_encoding(response) is response


def test_unknown_label_is_guessed_by_scrapy_and_fixed() -> None:
    response = html(page(SHORT_TITLE).encode("cp949"), charset="x-windows-949")
    assert title_of(response) != SHORT_TITLE  # what Scrapy alone makes of it
    assert title_of(fix_encoding(response)) == SHORT_TITLE


# case 2: declared EUC-KR or cp949, bytes are UTF-8
@pytest.mark.parametrize("label", [*EUC_KR_LABELS, "cp949"])
def test_declared_euc_kr_but_utf8_bytes_in_header(label: str) -> None:
    fixed = fix_encoding(html(page().encode("utf-8"), charset=label))
    assert title_of(fixed) == TITLE
    assert fixed.encoding == "utf-8"


def test_declared_euc_kr_but_utf8_bytes_in_meta() -> None:
    response = html(page(meta="euc-kr").encode("utf-8"))
    assert "\ufffd" in response.text  # Scrapy takes the meta at its word
    fixed = fix_encoding(response)
    assert title_of(fixed) == TITLE
    assert fixed.encoding == "utf-8"


def test_declared_euc_kr_ascii_only_keeps_cp949() -> None:
    response = html(page("Notice").encode("ascii"), charset="euc-kr")
    assert fix_encoding(response) is response
    assert response.encoding == "cp949"


# case 3: nothing declared
def test_undeclared_utf8_is_left_alone() -> None:
    response = html(page().encode("utf-8"))
    assert fix_encoding(response) is response
    assert title_of(response) == TITLE


@pytest.mark.parametrize("title", [TITLE, SHORT_TITLE])
def test_undeclared_non_utf8_reads_cp949(title: str) -> None:
    fixed = fix_encoding(html(page(title).encode("cp949")))
    assert title_of(fixed) == title
    assert fixed.encoding == "cp949"


def test_undeclared_ascii_is_left_alone() -> None:
    response = html(page("Notice").encode("ascii"))
    assert fix_encoding(response) is response


# case 4: declared UTF-8, bytes are CP949
@pytest.mark.parametrize("where", ["header", "meta"])
def test_declared_utf8_but_cp949_bytes(where: str) -> None:
    if where == "header":
        response = html(page().encode("cp949"), charset="utf-8")
    else:
        response = html(page(meta="UTF-8").encode("cp949"))
    fixed = fix_encoding(response)
    assert title_of(fixed) == TITLE
    assert fixed.encoding == "cp949"


def test_declared_utf8_broken_for_both_stays_utf8() -> None:
    response = html(page().encode("utf-8") + b"\xff", charset="utf-8")
    assert fix_encoding(response) is response


# already right, and idempotent
@pytest.mark.parametrize(
    ("body", "charset"),
    [
        (page().encode("utf-8"), "utf-8"),
        (page(meta="utf-8").encode("utf-8"), None),
        (page().encode("cp949"), "cp949"),
        (b"\xef\xbb\xbf" + page().encode("utf-8"), "euc-kr"),  # a BOM outranks the header
        (page().encode("iso-8859-1", "replace"), "iso-8859-1"),  # other labels taken at their word
    ],
)
def test_correct_responses_come_back_unchanged(body: bytes, charset: str | None) -> None:
    response = html(body, charset)
    assert fix_encoding(response) is response


def test_fixing_twice_changes_nothing_more() -> None:
    fixed = fix_encoding(html(page().encode("utf-8"), charset="euc-kr"))
    assert fix_encoding(fixed) is fixed


def test_fixed_response_keeps_url_headers_and_class() -> None:
    response = html(page().encode("utf-8"), charset="euc-kr")
    fixed = fix_encoding(response)
    assert type(fixed) is HtmlResponse
    assert fixed.url == URL and fixed.body == response.body
    assert fixed.headers == response.headers


# feeds
@pytest.mark.parametrize("declared", ["euc-kr", "EUC-KR", "ks_c_5601-1987", "x-windows-949"])
@pytest.mark.parametrize("title", [TITLE, SHORT_TITLE])
def test_xml_feed_declared_euc_kr_reads_cp949(declared: str, title: str) -> None:
    response = XmlResponse(url=URL + ".rss", body=feed(title, declared).encode("cp949"))
    fixed = fix_encoding(response)
    assert type(fixed) is XmlResponse
    assert fixed.xpath("//item/title/text()").get() == title


def test_xml_feed_declared_euc_kr_but_utf8() -> None:
    response = XmlResponse(url=URL + ".rss", body=feed().encode("utf-8"))
    fixed = fix_encoding(response)
    assert fixed.encoding == "utf-8"
    assert fixed.xpath("//item/title/text()").get() == TITLE


def test_xml_feed_declared_utf8_but_cp949() -> None:
    response = XmlResponse(url=URL + ".rss", body=feed(declared="utf-8").encode("cp949"))
    assert fix_encoding(response).xpath("//item/title/text()").get() == TITLE


# the plain helpers
@pytest.mark.parametrize(
    ("body", "declared", "encoding"),
    [
        (TITLE.encode("cp949"), "euc-kr", "cp949"),
        (TITLE.encode("cp949"), "x-windows-949", "cp949"),
        (TITLE.encode("utf-8"), "euc-kr", "utf-8"),
        (TITLE.encode("utf-8"), "cp949", "utf-8"),
        (TITLE.encode("utf-8"), None, "utf-8"),
        (TITLE.encode("cp949"), None, "cp949"),
        (TITLE.encode("cp949"), "no-such-charset", "cp949"),
        (TITLE.encode("cp949"), "utf-8", "cp949"),
        (TITLE.encode("cp949"), "UTF8", "cp949"),
        (TITLE.encode("utf-8"), "utf-8", "utf-8"),
        (b"\xef\xbb\xbf" + TITLE.encode("utf-8"), "euc-kr", "utf-8"),
        (b"\xff\xfe" + TITLE.encode("utf-16-le"), None, "utf-16-le"),
    ],
)
def test_decode_bytes(body: bytes, declared: str | None, encoding: str) -> None:
    assert decode_bytes(body, declared) == (TITLE, encoding)


def test_decode_bytes_ascii() -> None:
    assert decode_bytes(b"Notice", "euc-kr") == ("Notice", "cp949")
    assert decode_bytes(b"Notice", None) == ("Notice", "utf-8")
    assert decode_bytes(b"", None) == ("", "utf-8")


def test_decode_bytes_replaces_what_cannot_be_read() -> None:
    text, encoding = decode_bytes(TITLE.encode("utf-8") + b"\xff", "utf-8")
    assert (text, encoding) == (TITLE + "\ufffd", "utf-8")


@pytest.mark.parametrize(
    ("headers", "body", "label"),
    [
        ({"Content-Type": "text/html; charset=x-windows-949"}, b"<html></html>", "x-windows-949"),
        ({"Content-Type": 'text/html; charset="EUC_KR"'}, b"", "EUC_KR"),
        ({}, b'<meta charset="ks_c_5601-1987"><title>t</title>', "ks_c_5601-1987"),
        ({}, b"<!-- <meta charset=utf-8> --><meta charset=euc-kr>", "euc-kr"),
        ({}, b"<html><body><meta charset=euc-kr></body>", None),
        ({}, b'<?xml version="1.0" encoding="euc-kr"?><rss/>', "euc-kr"),
        ({"Content-Type": "text/html"}, b"<title>t</title>", None),
    ],
)
def test_declared_charset(headers: dict[str, str], body: bytes, label: str | None) -> None:
    response = HtmlResponse(url=URL, body=body, headers=headers)
    assert declared_charset(response) == label
