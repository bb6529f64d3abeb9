"""README.md and docs/*.md render as written (CommonMark + tables, via markdown-it-py): no table
split by a blank line (its last rows would become text), no fenced block that fails to close
because text follows its closing fence (the rest of the file would be code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def problems(text: str) -> list[str]:
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    lines = text.splitlines()
    found = []
    for i, tok in enumerate(tokens):
        if tok.type == "fence" and tok.map:
            start, end = tok.map
            for offset, line in enumerate(tok.content.splitlines(), start + 2):
                if FENCE.match(line):
                    found.append(f"line {offset}: a fence inside a code block (text after a "
                                 f"closing fence?): {line.strip()[:60]!r}")  # fmt: skip
            closing = lines[end - 1] if end - 1 < len(lines) else ""
            if end - start < 2 or not FENCE.match(closing):
                found.append(f"line {start + 1}: code block never closed")
        if tok.type == "inline" and tokens[i - 1].type == "paragraph_open":
            first = tok.content.lstrip()
            if first.startswith("|") and first.count("|") >= 3:
                row = tokens[i - 1].map[0] + 1 if tokens[i - 1].map else "?"
                found.append(f"line {row}: table rows rendered as text (a table split by a "
                             "blank line?)")  # fmt: skip
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_renders_as_written(doc: Path) -> None:
    assert problems(doc.read_text(encoding="utf-8")) == []


def test_the_checks_catch_both_mistakes() -> None:
    split = "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n"
    assert any("table rows rendered as text" in p for p in problems(split))
    fence = "```toml\nx = 1\n``` then text\n\n## Heading\n"
    assert any("never closed" in p or "fence inside" in p for p in problems(fence))
    assert problems("| a |\n|---|\n| 1 |\n\n```\ncode\n```\ntext\n") == []
