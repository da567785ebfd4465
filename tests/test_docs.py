"""The code blocks in README.md and docs/*.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_execute(page: Path) -> None:
    """Each page's python blocks run in order, in one namespace, without error."""
    blocks = _BLOCK.findall(page.read_text())
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for block in blocks:
        # dont_inherit: run the examples as users would, without this file's __future__ flags.
        code = compile(block, str(page), "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102 - our own docs


def test_docs_have_code() -> None:
    """The docs pages are not empty of examples (the test above would pass vacuously)."""
    assert sum(len(_BLOCK.findall(p.read_text())) for p in PAGES) >= 5
