"""Sphinx configuration for the apisec documentation site (`nox -s docs`).

The pages are the Markdown files in this folder (read by MyST); the API
reference under reference/ is generated from the docstrings by autodoc, whose
Google-style sections napoleon reads. The build runs with -W: every warning
fails it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from sphinx.util import logging as sphinx_logging

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apisec  # noqa: E402 - the package is imported from this checkout

project = "apisec"
author = "apisec developers"
copyright = "2026, apisec developers"
release = apisec.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# "Attributes:" sections as fields of their class, not second descriptions of its members.
napoleon_use_ivar = True

html_theme = "furo"
html_title = f"apisec {release}"
html_static_path: list[str] = []
pygments_style = "sphinx"


def _check_reference_coverage(app: object, env: Any) -> None:
    """Warn (so -W fails the build) about any public name the reference does not document."""
    # One reference page per public module (tests/test_docs.py pins the list).
    public = sorted(p.stem for p in (ROOT / "docs" / "reference").glob("apisec.*.md"))
    log = sphinx_logging.getLogger(__name__)
    documented = set(env.get_domain("py").objects)
    modules = {name: importlib.import_module(name) for name in public}
    for module_name, module in modules.items():
        for name in module.__all__:
            if f"{module_name}.{name}" in documented:
                continue
            value = getattr(module, name)
            elsewhere = [
                other
                for other, owner in modules.items()
                if f"{other}.{name}" in documented and getattr(owner, name, None) is value
            ]
            if not elsewhere:
                log.warning(f"{module_name}.{name} is public but not in the API reference")


def setup(app: Any) -> None:
    app.connect("env-check-consistency", _check_reference_coverage)
