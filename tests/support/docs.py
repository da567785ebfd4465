"""Running the documentation's python blocks, as tests/test_docs.py and the store contracts do."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def module_name(page: Path) -> str:
    """``docs_fastapi`` for docs/fastapi.md, ``docs_howto_stores`` for docs/howto/stores.md."""
    where = page.relative_to(DOCS) if page.is_relative_to(DOCS) else page.relative_to(ROOT)
    return "docs_" + where.with_suffix("").as_posix().replace("/", "_")


def execute(page: Path, module: types.ModuleType) -> None:
    """Run the page's python blocks in order in ``module``'s namespace."""
    text = page.read_text()
    for match in BLOCK.finditer(text):
        # Padded so tracebacks point at the page's own line numbers.
        source = "\n" * text.count("\n", 0, match.start(1)) + match.group(1)
        # dont_inherit: run the examples as users would, without the caller's __future__ flags.
        code = compile(source, str(page), "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - our own docs


def load_page(page: Path) -> types.ModuleType:
    """The page's code as an imported module (it stays in ``sys.modules``)."""
    name = module_name(page)
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        execute(page, module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
