"""Re-decode responses from Korean boards that lie about their encoding.

Scrapy picks an encoding from the BOM, the Content-Type charset, a ``<meta>`` or ``<?xml?>``
declaration, then a guess (ASCII, UTF-8, then charset-normalizer). w3lib already maps every
EUC-KR label Python knows (``euc-kr``, ``EUC_KR``, ``ks_c_5601-1987``, ``korean``) to cp949,
so a declared EUC-KR page with CP949-only syllables ("똠", "뷁", "햏") decodes fine. The gaps:

* labels Python does not know (``x-windows-949``, ``windows-949``) are dropped without a word and
  the page is guessed; charset-normalizer calls short Korean text ``big5hkscs``;
* pages declared EUC-KR whose bytes are UTF-8, and pages declared UTF-8 whose bytes are CP949,
  decode into replacement characters;
* an undeclared page that is not UTF-8 is guessed instead of read as CP949.

``decode_bytes`` holds the rules; ``fix_encoding`` applies them to a response.
"""

import codecs
import re
from typing import TypeVar

from scrapy.http import TextResponse
from w3lib.encoding import read_bom, resolve_encoding

__all__ = ["declared_charset", "decode_bytes", "fix_encoding"]

ResponseT = TypeVar("ResponseT", bound=TextResponse)

_CP949 = "cp949"
_UTF8 = "utf-8"
# WHATWG's EUC-KR labels plus the Microsoft and Java names of code page 949.
_KOREAN_LABELS = frozenset(
    {
        "cseuckr", "csksc56011987", "euc-kr", "euckr", "x-euc-kr", "iso-ir-149", "korean",
        "ks-c-5601-1987", "ks-c-5601-1989", "ksc5601", "ksc-5601", "ks-x-1001",
        "cp949", "ms949", "uhc", "windows-949", "x-windows-949",
    }
)  # fmt: skip
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_BODY_SCAN = re.compile(
    rb"""<!--.*?(?:-->|$)"""
    rb"""|<meta\b[^>]*?charset\s*=\s*["']?\s*(?P<meta>[\w.:-]+)"""
    rb"""|<\?xml\b[^>]*?encoding\s*=\s*["']\s*(?P<xml>[\w.:-]+)"""
    rb"""|<body\b""",
    re.IGNORECASE | re.DOTALL,
)
_SCAN_BYTES = 4096  # what w3lib scans; declarations sit at the top


def declared_charset(response: TextResponse) -> str | None:
    """The charset label as written: the Content-Type header's, else the body's meta/xml one."""
    content_type = response.headers.get(b"Content-Type") or b""
    if match := _HEADER_CHARSET.search(content_type.decode("latin-1")):
        return match.group(1)
    for found in _BODY_SCAN.finditer(response.body[:_SCAN_BYTES]):
        if label := found["meta"] or found["xml"]:
            return label.decode("ascii")
        if found.group().lower().startswith(b"<body"):
            break
    return None


def decode_bytes(body: bytes, declared: str | None) -> tuple[str, str]:
    """Decode ``body`` that declares ``declared`` (None: no declaration); return text, encoding.

    A BOM wins. A Korean label or UTF-8 is checked against the bytes: EUC-KR means cp949 unless
    the bytes are non-ASCII valid UTF-8; UTF-8 that is invalid but reads as cp949 is cp949; no
    declaration is UTF-8 when valid, else cp949. Any other known label is taken at its word.
    """
    bom_encoding, bom = read_bom(body)
    if bom_encoding is not None and bom is not None:
        return body[len(bom) :].decode(bom_encoding, "replace"), bom_encoding
    encoding = _canonical(declared)
    if encoding is None or encoding in {_CP949, _UTF8}:
        encoding = _korean_or_utf8(body, encoding)
    return body.decode(encoding, "replace"), encoding


def fix_encoding(response: ResponseT) -> ResponseT:
    """``response`` re-decoded by ``decode_bytes``'s rules; the same object if it already reads
    right."""
    text, encoding = decode_bytes(response.body, declared_charset(response))
    if _same_codec(encoding, response.encoding) or text == response.text:
        return response
    return response.replace(encoding=encoding)


def _canonical(label: str | None) -> str | None:
    if label is None:
        return None
    if label.strip().lower().replace("_", "-") in _KOREAN_LABELS:
        return _CP949
    return resolve_encoding(label)  # None for labels Python does not know: treat as undeclared


def _korean_or_utf8(body: bytes, declared: str | None) -> str:
    if _decodes(body, _UTF8) and not (declared == _CP949 and body.isascii()):
        return _UTF8
    if declared == _UTF8 and not _decodes(body, _CP949):
        return _UTF8  # broken either way: keep what the page says
    return _CP949


def _decodes(body: bytes, encoding: str) -> bool:
    try:
        body.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _same_codec(one: str, other: str) -> bool:
    try:
        return codecs.lookup(one).name == codecs.lookup(other).name
    except LookupError:
        return False
