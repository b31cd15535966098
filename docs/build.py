"""Build the datasum website into `_site/`: the notebooks with their stored outputs, the claims, the API.

    python docs/build.py [--out _site] [--quiet]

Nothing is executed and nothing is downloaded. The script lays out a Sphinx source tree in
`docs/_gen/` and runs Sphinx in `docs/_build/` with its cache in `docs/_doctrees/` (all git-ignored):
myst-nb renders the notebooks, pydata-sphinx-theme the pages, and MathJax is copied from the
sphinx-mathjax-offline wheel. The site:

* `index.md`: the landing page, made from README.md's opening, "The two commands", "The methods"
  and "Results" sections (so the two never disagree);
* `nbs/<name>.ipynb`: every notebook of `nbs/` in course order, cells marked `#| hide` dropped,
  `#| output: false` outputs dropped, directive comments removed; after each `save_figure` call
  the `cpu` (and `paper`) figure it writes, unless the notebook already shows it; a label on the
  claims cell, which the claims page links to;
* `claims.md`: every `figures/<scale>/*/claims.json`, paper claims apart from checks;
* `api/<module>.md`: one page per module of `datasum/`, from docstrings and signatures (autodoc).

`_site/.datasum-inputs` records a digest of every input, so a test can tell a stale site (`--check`
exits 1 when the site is missing or stale).
"""
from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GEN = DOCS / "_gen"
STAMP = ".datasum-inputs"
SCALES = ("cpu", "paper")  # the committed figure scales shown on the site, in this order
SECTIONS = {"0": "The shared core", "9": "Reproduction"}  # by the notebook's first digit; others are methods
METHODS_SECTION = "The methods"


# ---------------------------------------------------------------- inputs and staleness

def notebooks(root: Path = ROOT) -> list[Path]:
    "The notebooks of the course, in course order (by name); `_`-prefixed and hidden ones are not."
    return sorted(p for p in (root / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))


def input_files(root: Path = ROOT) -> list[Path]:
    "Every file the site is made from."
    files = [root / "README.md", *notebooks(root), *sorted((root / "datasum").glob("*.py"))]
    files += sorted(p for p in DOCS.rglob("*") if p.is_file() and not _generated(p) and "__pycache__" not in p.parts)
    for scale in SCALES:
        folder = root / "figures" / scale
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".json", ".md"))
    return [p for p in files if p.is_file()]


def _generated(path: Path) -> bool:
    return any(part in ("_gen", "_doctrees", "_build") for part in path.relative_to(DOCS).parts)


def inputs_digest(root: Path = ROOT) -> str:
    "A digest of the names and contents of every input file."
    digest = hashlib.sha256()
    for path in input_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def is_current(out: Path, root: Path = ROOT) -> bool:
    "Whether the site in `out` was built from the inputs as they are now."
    stamp = out / STAMP
    return stamp.is_file() and stamp.read_text().strip() == inputs_digest(root)


# ---------------------------------------------------------------- notebooks

_DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
_NBVAL = re.compile(r"^\s*#\s*NBVAL_[A-Z_]+\s*$")
_STRINGS = re.compile(r"""(?<![\w"'])["']([A-Za-z0-9_.-]+)["']""")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _directives(source: str) -> dict[str, str]:
    found = {}
    for line in source.splitlines():
        if (match := _DIRECTIVE.match(line)): found[match.group(1)] = match.group(2)
        elif line.strip(): break
    return found


def _calls(source: str, name: str) -> list[list[str]]:
    "The plain string literals passed to each call of `name` in `source` (its definition excluded)."
    calls = []
    for match in re.finditer(rf"(?<![\w.]){name}\(", source):
        if re.search(rf"def\s+$", source[:match.start()]): continue
        depth, end = 1, match.end()
        while end < len(source) and depth:
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        calls.append(_STRINGS.findall(source[match.end():end - 1]))
    return calls


def notebook_methods(nb: dict) -> list[str]:
    "The methods (figure folders) whose claims a notebook reports, in order of appearance."
    methods = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            for args in _calls(_source(cell), "report_claims"):
                if args and args[-1] not in methods and args[-1] != "toy": methods.append(args[-1])
    return methods


def claims_label(stem: str) -> str:
    "The label of a notebook's claims cell."
    return f"claims-cell-{stem}"


def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _figure_markdown(root: Path, method: str, name: str, shown: str) -> str:
    "Markdown showing the committed figures `<name>.png` of `method` that the notebook does not show yet."
    parts = []
    for scale in SCALES:
        rel = f"figures/{scale}/{method}/{name}.png"
        if (root / rel).is_file() and rel not in shown:
            parts.append(f"```{{figure}} ../{rel}\n:alt: {name} ({scale} scale)\n\n"
                         f"`{name}` at the `{scale}` scale (`{rel}`)\n```")
    return "\n\n".join(parts)


_IMAGE = re.compile(r"!\[([^\]]*)\]\((?:\.\./)?(figures/[^)\s]+)\)")


def _missing_figures(markdown: str, root: Path, path: Path) -> str:
    "Markdown whose images of uncommitted figures are replaced by a note saying so (and a warning here)."
    def note(match):
        if (root / match.group(2)).is_file(): return match.group(0)
        print(f"docs/build.py: warning: nbs/{path.name} shows {match.group(2)}, which does not exist", file=sys.stderr)
        return f"*(figure `{match.group(2)}` does not exist yet: run the notebook at that scale)*"
    return _IMAGE.sub(note, markdown)


def site_notebook(path: Path, root: Path = ROOT) -> tuple[dict, dict]:
    "The notebook as the site shows it, and facts about it (title, module, methods, claims label)."
    nb = json.loads(path.read_text())
    everything = "\n".join(_source(c) for c in nb["cells"])
    cells, module, claims_cell = [], None, False
    methods = notebook_methods(nb)
    for cell in nb["cells"]:
        source = _source(cell)
        if cell["cell_type"] != "code":
            if cell["cell_type"] == "markdown": source = _missing_figures(source, root, path)
            kept = {"cell_type": cell["cell_type"], "metadata": {}, "source": source}
            if cell.get("attachments"): kept["attachments"] = cell["attachments"]
            if cell.get("id"): kept["id"] = cell["id"]
            cells.append(kept)
            continue
        flags = _directives(source)
        if "default_exp" in flags: module = flags["default_exp"].split()[0]
        if "hide" in flags or "exporti" in flags or "default_exp" in flags: continue
        if "eval" in flags and flags["eval"].lower() == "false" and not source.strip(): continue
        shown = "\n".join(l for l in source.splitlines() if not _DIRECTIVE.match(l) and not _NBVAL.match(l)).strip("\n")
        outputs = [] if flags.get("output", "").lower() == "false" else cell.get("outputs", [])
        tags = ["remove-input"] if flags.get("echo", "").lower() == "false" else []
        if not claims_cell and methods and _calls(source, "report_claims") and not re.search(r"def\s+report_claims", source):
            cells.append(_markdown_cell(f"({claims_label(path.stem)})=\n"))
            claims_cell = True
        cells.append({"cell_type": "code", "execution_count": None, "metadata": {"tags": tags} if tags else {},
                      "outputs": outputs, "source": shown, **({"id": cell["id"]} if cell.get("id") else {})})
        for args in _calls(source, "save_figure"):
            if len(args) >= 2 and (extra := _figure_markdown(root, args[-2], args[-1], everything)):
                cells.append(_markdown_cell(extra))
                everything += extra
    figure_methods = dict.fromkeys(args[-2] for c in nb["cells"] if c["cell_type"] == "code"
                                   for args in _calls(_source(c), "save_figure") if len(args) >= 2 and args[-2] != "toy")
    leftovers = "\n\n".join(extra for method in figure_methods
                             for stem in sorted({p.stem for scale in SCALES for p in (root / "figures" / scale / method).glob("*.png")})
                             if (extra := _figure_markdown(root, method, stem, everything)))
    if leftovers:  # figures the notebook writes under names that no literal in its code spells out
        at = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and c["source"].startswith("(claims-cell-")),
                  len(cells))
        cells.insert(at, _markdown_cell("**More figures of this notebook at the committed scales:**\n\n" + leftovers))
    title = next((m.group(1) for c in nb["cells"] if c["cell_type"] == "markdown"
                  for m in [re.match(r"#\s+(.+)", _source(c).strip())] if m), path.stem)
    for number, cell in enumerate(cells):
        cell.setdefault("id", f"site-{number}")
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                       "language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
    return nb, {"stem": path.stem, "title": title, "module": module, "methods": methods,
                "claims_label": claims_label(path.stem) if claims_cell else None}


def _section(stem: str) -> str:
    return SECTIONS.get(stem[:1], METHODS_SECTION)


# ---------------------------------------------------------------- claims

def load_claims(root: Path = ROOT) -> dict[str, list[dict]]:
    "Every claims.json of the committed scales, by scale: method, claim record, kind (default paper)."
    by_scale = {}
    for scale in SCALES:
        records = []
        for path in sorted((root / "figures" / scale).glob("*/claims.json")):
            data = json.loads(path.read_text())
            for claim in data.get("claims", []):
                records.append({**claim, "method": data.get("method", path.parent.name),
                                "kind": claim.get("kind") or "paper"})
        if records: by_scale[scale] = records
    return by_scale


def references() -> dict[str, str]:
    "The works that claims cite, by key (`datasum.report.REFERENCES`; empty where it cannot be imported)."
    try:
        sys.path.insert(0, str(ROOT))
        from datasum.report import REFERENCES
        return dict(REFERENCES)
    except Exception:  # noqa: BLE001 - the claims page still lists every claim
        return {}
    finally:
        sys.path.remove(str(ROOT))


def _source_cell(source, works: dict[str, str]) -> str:
    key = str(source or "").partition(":")[0].strip()
    if key in works: return f'<a class="reference internal" href="#ref-{key}" title="{_cell(works[key])}">{_cell(source)}</a>'
    return _cell(source)


def _status(holds) -> str:
    return "n/a" if holds is None else ("holds" if holds else "fails")


def _cell(text) -> str:
    return html.escape(str(text if text is not None else ""))


def claims_page(by_scale: dict[str, list[dict]], pages: list[dict]) -> str:
    "The claims page (MyST Markdown with HTML tables): per scale, paper claims, then checks."
    where = {m: p for p in pages for m in p["methods"]}
    lines = ["# Claims", "",
             "Every claim that a notebook judges, as its claims cell computed it at each committed scale "
             "(`figures/<scale>/<method>/claims.json`, written by `datasum.report.report_claims`). "
             "*Paper claims* are statements or numbers of the papers, with where they come from; "
             "*checks* compare our code with a reference (a golden value, a library, an identity) and are "
             "never counted as paper claims. Each method links to the notebook cell that computes its claims.", ""]
    works = references()
    if not by_scale: lines.append("No `claims.json` has been committed yet.")
    for scale, records in by_scale.items():
        lines += [f"## The `{scale}` scale", ""]
        for kind, heading in (("paper", "Paper claims"), ("check", "Checks")):
            chosen = [r for r in records if r["kind"] == kind]
            counts = {s: sum(_status(r.get("holds")) == s for r in chosen) for s in ("holds", "fails", "n/a")}
            lines += [f"### {heading} ({scale})", "",
                      f"**{counts['holds']} hold, {counts['fails']} fail, {counts['n/a']} cannot be judged at this scale.**"
                      if chosen else f"No {heading.lower()} at this scale.", ""]
            for method in dict.fromkeys(r["method"] for r in chosen):
                page = where.get(method)
                link = (f"computed in {{ref}}`{page['stem']} <{page['claims_label']}>`"
                        if page and page["claims_label"] else "no notebook of this checkout reports it")
                lines += [f"#### {method} ({kind}, {scale})", "", f"`figures/{scale}/{method}/claims.json`, {link}.", ""]
                reference = "reference" if kind == "check" else "paper"
                rows = ["<table class=\"claims-table\">",
                        f"<thead><tr><th>claim</th><th>{reference}</th><th>ours</th><th>status</th>"
                        "<th>source</th><th>note</th></tr></thead><tbody>"]
                for r in (r for r in chosen if r["method"] == method):
                    status = _status(r.get("holds"))
                    ours = _cell(r.get("ours")) + (f" (± {r['tolerance']:g})" if r.get("tolerance") is not None else "")
                    rows.append(f"<tr class=\"claim claim-{kind}\"><td class=\"claim-text\">{_cell(r.get('claim'))}</td>"
                                f"<td>{_cell(r.get('paper'))}</td><td>{ours}</td>"
                                f"<td><span class=\"claim-status status-{status.replace('/', '')}\">{status}</span></td>"
                                f"<td>{_source_cell(r.get('source'), works)}</td><td>{_cell(r.get('note'))}</td></tr>")
                rows.append("</tbody></table>")
                lines += ["```{raw} html", *rows, "```", ""]
    cited = [k for k in works if any(str(r.get("source") or "").partition(":")[0].strip() == k
                                     for records in by_scale.values() for r in records)]
    if cited:
        lines += ["## References", "", "```{raw} html", "<dl class=\"claims-references\">",
                  *[f'<dt id="ref-{k}">{_cell(k)}</dt><dd>{_cell(works[k])}</dd>' for k in cited], "</dl>", "```", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- landing page and API

def readme_sections(readme: str) -> tuple[str, dict[str, str]]:
    "README.md's opening (title and intro) and its `## ` sections by heading."
    parts = re.split(r"^## +(.+?)\s*$", readme, flags=re.M)
    return parts[0], {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _link_readme(text: str, pages: list[dict]) -> str:
    "README Markdown with its repository links turned into site links."
    stems = {p["stem"] for p in pages}
    def notebook(match):
        stem = match.group(1)
        return f"[`nbs/{stem}`](nbs/{stem}.ipynb)" if stem in stems else match.group(0)
    text = re.sub(r"`nbs/([\w]+)`", notebook, text)
    text = re.sub(r"\]\(figures/(?:cpu|paper)/CLAIMS\.md\)", "](claims.md)", text)
    text = re.sub(r"`datasum\.(\w+)`", lambda m: f"[`datasum.{m.group(1)}`](api/{m.group(1)}.md)"
                  if (ROOT / "datasum" / f"{m.group(1)}.py").is_file() else m.group(0), text)
    return text


def landing_page(readme: str, pages: list[dict]) -> str:
    "The landing page: README's opening, the two commands, the methods, the results; then the contents."
    opening, sections = readme_sections(readme)
    lines = [_link_readme(opening.strip(), pages), ""]
    results = sections.get("Results", "")
    if (headline := re.search(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$", results, flags=re.M)):  # the headline figure, first
        lines += ["```{figure} " + headline.group(2), f":alt: {headline.group(1)}", ":class: headline-figure", "",
                  headline.group(1), "```", ""]
        sections["Results"] = results.replace(headline.group(0), "", 1)
    for name in ("The two commands", "The methods", "Results"):
        if name in sections: lines += [f"## {name}", "", _link_readme(sections[name].strip(), pages), ""]
    lines += ["## This site", "",
              "{doc}`The course <course>`: one page per notebook, in course order, with its prose, code and the "
              "outputs stored at the `smoke` scale (nothing here was re-executed); the figures of the committed "
              "`cpu` scale (and `paper`, where it was run) appear where the notebook draws them. "
              "{doc}`Claims <claims>` gathers every claim, paper claims apart from checks; the "
              "{doc}`API reference <api/index>` documents every module. Build the site yourself with "
              "`make docs`, then open `_site/index.html`.", "",
              "```{toctree}", ":hidden:", "", "course", "claims", "api/index", "```", ""]
    return "\n".join(lines)


def course_page(pages: list[dict]) -> str:
    "The course: every notebook in order, grouped (the shared core, the methods, the reproduction)."
    lines = ["# The course", "",
             "The notebooks of `nbs/` in the order they build on each other. Each is a tutorial and the source of "
             "one module of the package; the outputs shown are the ones committed with it (the `smoke` "
             "scale), and the figures marked `cpu` are those of the committed `cpu` run.", ""]
    groups: dict[str, list[dict]] = {}
    for page in pages: groups.setdefault(_section(page["stem"]), []).append(page)
    for caption, members in groups.items():
        lines += [f"## {caption}", "", "```{toctree}", f":caption: {caption}", ":maxdepth: 1", "",
                  *[f"{p['stem']} · {p['title']} <nbs/{p['stem']}>" for p in members], "```", ""]
    return "\n".join(lines)


def api_modules(root: Path = ROOT) -> list[str]:
    "The public modules of the package."
    return sorted(p.stem for p in (root / "datasum").glob("*.py") if not p.stem.startswith("_"))


def api_pages(modules: list[str], pages: list[dict]) -> dict[str, str]:
    "The API reference: an index and one page per module, with a link to the notebook it comes from."
    source = {p["module"]: p for p in pages if p["module"]}
    files = {"api/index.md": "\n".join(["# API reference", "",
             "One page per module of the `datasum` package, generated from the signatures and docstrings. "
             "Each module is exported from a notebook (nbdev), which explains it and tests it.", "",
             "```{toctree}", ":maxdepth: 1", "", *modules, "```", ""])}
    for module in modules:
        page = source.get(module)
        origin = (f"Exported from the notebook {{doc}}`nbs/{page['stem']} <../nbs/{page['stem']}>`, "
                  "which explains and tests it." if page else "")
        files[f"api/{module}.md"] = "\n".join([f"# datasum.{module}", "", origin, "",
                                               "```{eval-rst}", f".. automodule:: datasum.{module}",
                                               "   :members:", "```", ""])
    return files


# ---------------------------------------------------------------- the build

def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    if not path.is_file() or path.read_bytes() != data: path.write_bytes(data)


def generate(root: Path = ROOT, gen: Path = GEN) -> dict:
    "Lay out the Sphinx source tree in `gen`; return the pages and counts."
    digest = inputs_digest(root)
    wanted: dict[str, str | bytes] = {}
    pages = []
    for path in notebooks(root):
        nb, facts = site_notebook(path, root)
        wanted[f"nbs/{path.name}"] = json.dumps(nb, indent=1, ensure_ascii=False)
        pages.append(facts)
    for scale in SCALES:
        folder = root / "figures" / scale
        for png in sorted(folder.rglob("*.png")) if folder.is_dir() else []:
            wanted[str(png.relative_to(root))] = png.read_bytes()
    readme = (root / "README.md").read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme):
        if (root / image).is_file(): wanted[image] = (root / image).read_bytes()
    wanted["index.md"] = landing_page(readme, pages)
    wanted["course.md"] = course_page(pages)
    wanted["claims.md"] = claims_page(load_claims(root), pages)
    wanted.update(api_pages(api_modules(root), pages))
    for rel, content in wanted.items(): _write(gen / rel, content)
    for path in sorted(gen.rglob("*"), reverse=True):  # drop what no input makes any more
        rel = str(path.relative_to(gen))
        if path.is_file() and rel not in wanted: path.unlink()
        elif path.is_dir() and not any(path.iterdir()): path.rmdir()
    return {"pages": pages, "digest": digest}


def build(out: Path, quiet: bool = False) -> dict:
    "Generate the sources and run Sphinx into `out`; return timings and counts."
    start = time.monotonic()
    facts = generate()
    doctrees = DOCS / "_doctrees"  # Sphinx's cache: re-read only changed pages, unless the build itself changed
    tooling = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(DOCS.rglob("*"))
                                      if p.is_file() and not _generated(p) and "__pycache__" not in p.parts)).hexdigest()
    if not (doctrees / ".tooling").is_file() or (doctrees / ".tooling").read_text() != tooling:
        shutil.rmtree(doctrees, ignore_errors=True)
        doctrees.mkdir(parents=True)
        (doctrees / ".tooling").write_text(tooling)
    staging = DOCS / "_build" / "html"  # myst-nb writes its jupyter_execute/ beside the output folder
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(DOCS), "-d", str(doctrees),
               "-j", "1", "--keep-going", str(GEN), str(staging)]
    if quiet: command.insert(3, "-q")
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"})
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise SystemExit(f"docs/build.py: sphinx-build failed (exit {result.returncode}); see its messages above")
    (staging / STAMP).write_text(facts["digest"] + "\n")
    (staging / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ and _images/ as they are
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(staging, out)
    html_pages = sorted(out.rglob("*.html"))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seconds": time.monotonic() - start, "html": len(html_pages), "notebooks": len(facts["pages"]),
            "bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the datasum website (static HTML) from the notebooks.")
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default: _site)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors from Sphinx")
    parser.add_argument("--check", action="store_true", help="exit 1 when the site is missing or stale, build nothing")
    parser.add_argument("--if-stale", action="store_true", help="build only when the site is missing or stale")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.check or args.if_stale:
        if is_current(out):
            print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: up to date")
            return 0
        if args.check:
            print(f"{out}: missing or stale (run make docs)")
            return 1
    facts = build(out, quiet=args.quiet)
    print(f"docs: {facts['notebooks']} notebooks, {facts['html']} HTML pages, "
          f"{facts['bytes'] / 2**20:.1f} MiB in {out} ({facts['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
