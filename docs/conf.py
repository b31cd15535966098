"""Sphinx configuration of the datasum website; docs/build.py lays out the sources and runs Sphinx with it."""
from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

project = "datasum"
author = "datasum developers"
copyright = "datasum developers, Apache-2.0"
try:
    from datasum import __version__ as release
except Exception:  # noqa: BLE001 - the site builds without the package's heavy dependencies
    release = ""
version = release

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]

# The notebooks are shown with the outputs they were committed with: never executed here.
nb_execution_mode = "off"
nb_output_stderr = "show"
nb_merge_streams = True
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "attrs_inline"]
myst_heading_anchors = 3
myst_url_schemes = ["http", "https", "mailto"]
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
exclude_patterns = ["**/.ipynb_checkpoints"]

# API pages: the package's own signatures and docstrings. A dependency that is not installed (the
# site needs no model library) is replaced by a stand-in, so every module documents.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports = [name for name in ("torch", "jax", "jaxlib", "transformers", "tokenizers", "gguf",
                                          "accelerate", "sklearn", "networkx", "papermill", "nbformat")
                        if importlib.util.find_spec(name) is None]
add_module_names = False

# The math renderer travels with the site: MathJax 3 from the sphinx-mathjax-offline wheel, copied
# in build-finished (only what tex-chtml needs), never a CDN.
mathjax_path = "mathjax/tex-chtml.js"
MATHJAX_PARTS = ["tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y"]

html_theme = "pydata_sphinx_theme"
html_title = "datasum"
html_static_path = ["static"]
html_css_files = ["datasum.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_show_search_summary = False  # summaries fetch each page, which browsers refuse on file://
html_theme_options = {
    "navigation_with_keys": False,
    "show_nav_level": 1,
    "navigation_depth": 3,
    "show_toc_level": 2,
    "header_links_before_dropdown": 4,
    "secondary_sidebar_items": ["page-toc"],
    "navbar_end": ["theme-switcher"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["sidebar-nav-bs"], "index": [], "claims": [], "search": []}
html_context = {"default_mode": "light"}  # the theme logs a console error without one


def mathjax_source() -> Path:
    "Where the bundled MathJax lies (the sphinx-mathjax-offline wheel)."
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("the site bundles MathJax from sphinx-mathjax-offline: pip install sphinx-mathjax-offline")
    return Path(spec.origin).parent / "static" / "mathjax"


def copy_mathjax(app, exception) -> None:
    "Copy the parts of MathJax that the pages load into `_static/mathjax`."
    if exception is not None or app.builder.format != "html": return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir(): shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        elif (source / part).is_file():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


_CODE = re.compile(r"(`+)(.+?)\1")
_SPECIAL = re.compile(r"([\\|*_`<>\[\]])")


def markdown_docstring(line: str) -> str:
    "One line of an nbdev docstring (Markdown: `code`, |x|, *) as reStructuredText with the same look."
    out, at = [], 0
    for match in _CODE.finditer(line):
        out.append(_SPECIAL.sub(r"\\\1", line[at:match.start()]))
        code = match.group(2).strip()
        before = "\\ " if match.start() and line[match.start() - 1].isalnum() else ""
        after = "\\ " if match.end() < len(line) and line[match.end()].isalnum() else ""
        out.append(f"{before}``{code}``{after}" if code and "``" not in code else _SPECIAL.sub(r"\\\1", match.group(0)))
        at = match.end()
    out.append(_SPECIAL.sub(r"\\\1", line[at:]))
    return "".join(out)


def docstring_as_markdown(app, what, name, obj, options, lines) -> None:
    "autodoc hook: the docstrings are written in Markdown, as the notebooks are."
    if what == "module":  # nbdev's "Docs: <doc_host>/<module>.html.md" points at a site that this one replaces
        lines[:] = [line for line in lines if not line.startswith("Docs: ")]
    lines[:] = [markdown_docstring(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", docstring_as_markdown)
    mathjax_source()  # fail early, with the install line, when MathJax is missing
    app.connect("build-finished", copy_mathjax)
