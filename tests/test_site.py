"""The website (`make docs` → `_site/`) in a real browser: headless Chromium driven by playwright.

Every page loads without a console error and without asking the network for anything; every image
loads; formulas are typeset by the bundled MathJax; no internal link or anchor is broken; the
claims page lists every claim; search answers. Screenshots of the landing page and of a method page
go to `_site/_screenshots/`. The site is rebuilt first when it is missing or older than its inputs.

Needs Chromium (`apt-get install chromium` on Debian/Ubuntu, or DATASUM_CHROMIUM=/path/to/chrome)
and the `docs` extra (`pip install -e ".[docs]"`: Sphinx, myst-nb, pydata-sphinx-theme,
sphinx-mathjax-offline, playwright). Without them the tests are skipped with that message, except
under CI=true, where they fail.
"""
from __future__ import annotations

import html.parser
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_site"
SHOTS = SITE / "_screenshots"
INSTALL_DOCS = 'pip install -e ".[docs]"  (Sphinx, myst-nb, pydata-sphinx-theme, sphinx-mathjax-offline, playwright)'
INSTALL_CHROMIUM = ("apt-get install chromium  (Debian/Ubuntu; any Chromium or Chrome works: "
                    "set DATASUM_CHROMIUM=/path/to/chromium)")
_spec = importlib.util.spec_from_file_location("datasum_site_build", ROOT / "docs" / "build.py")
site_build = importlib.util.module_from_spec(_spec)  # docs/build.py (its name would clash with pypa's `build`)
_spec.loader.exec_module(site_build)


def _unavailable(message: str):
    "Skip with `message`; under CI a missing tool is a failure, never a silent skip."
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"): pytest.fail(message, pytrace=False)
    pytest.skip(message)


def chromium_path() -> str | None:
    "The Chromium to drive: DATASUM_CHROMIUM, else the first Chromium or Chrome on PATH."
    if (given := os.environ.get("DATASUM_CHROMIUM")):
        return given if Path(given).is_file() else None
    return next((found for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                 if (found := shutil.which(name))), None)


@pytest.fixture(scope="session")
def site() -> Path:
    "The built site, rebuilt when missing or stale."
    missing = [name for name in ("sphinx", "myst_nb", "pydata_sphinx_theme", "sphinx-mathjax-offline")
               if importlib.util.find_spec(name) is None]
    if not site_build.is_current(SITE):
        if missing: _unavailable(f"the site is missing or stale and cannot be built without {', '.join(missing)}: {INSTALL_DOCS}")
        result = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--quiet"], cwd=ROOT,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"docs/build.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert (SITE / site_build.STAMP).is_file(), "docs/build.py left no _site/"
    return SITE


@pytest.fixture(scope="session")
def browser():
    "A headless Chromium, driven by playwright (whose own browser download is not needed)."
    if importlib.util.find_spec("playwright") is None: _unavailable(f"the site test needs playwright: {INSTALL_DOCS}")
    if (executable := chromium_path()) is None: _unavailable(f"the site test needs Chromium: {INSTALL_CHROMIUM}")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def html_pages(site: Path) -> list[Path]:
    "Every page of the site."
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts and "_screenshots" not in p.parts)


class _Page(html.parser.HTMLParser):
    "The ids, links and resources of one HTML page."
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"): self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"): self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key): self.links.append((tag, attrs[key]))


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_every_notebook_has_a_page_in_course_order(site):
    stems = [p.stem for p in site_build.notebooks()]
    assert stems, "no notebooks in nbs/"
    for stem in stems: assert (site / "nbs" / f"{stem}.html").is_file(), f"no page for nbs/{stem}.ipynb"
    course = (site / "course.html").read_text(encoding="utf-8")
    main = course[course.index('id="main-content"'):]
    order = list(dict.fromkeys(s for s in re.findall(r'href="nbs/([\w]+)\.html"', main) if s in stems))
    assert order == stems, f"the course page lists {order}, not the course order {stems}"
    for stem in stems:  # every notebook page links every other one (the sidebar)
        page = (site / "nbs" / f"{stem}.html").read_text(encoding="utf-8")
        linked = set(re.findall(r'href="([\w]+)\.html"', page)) | {stem}
        assert set(stems) <= linked, f"nbs/{stem}.html does not link {sorted(set(stems) - linked)}"
    landing = (site / "index.html").read_text(encoding="utf-8")
    for target in ("course.html", "claims.html", "api/index.html"):
        assert f'href="{target}' in landing, f"the landing page does not link {target}"
    for module in site_build.api_modules():
        assert (site / "api" / f"{module}.html").is_file(), f"no API page for datasum.{module}"
    assert (site / "claims.html").is_file() and (site / "search.html").is_file()


def test_no_internal_link_is_broken(site):
    pages = {p: parse(p) for p in html_pages(site)}
    broken = []
    for path, page in pages.items():
        for tag, link in page.links:
            scheme = urlparse(link).scheme
            if scheme in ("http", "https", "mailto", "data", "javascript") or link.startswith("//"):
                if tag in ("script", "link", "img") and scheme in ("http", "https", ""):
                    broken.append(f"{path.relative_to(site)}: loads {link} from the network")
                continue
            target, fragment = urldefrag(link)
            target = urlparse(target).path  # no ?v=digest
            file = (path.parent / unquote(target)).resolve() if target else path
            if file.is_dir(): file = file / "index.html"
            if not file.is_file():
                broken.append(f"{path.relative_to(site)}: {link} (no such file)")
            elif fragment and file.suffix == ".html" and unquote(fragment) not in (pages.get(file) or parse(file)).ids:
                broken.append(f"{path.relative_to(site)}: {link} (no id {fragment!r} there)")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(sorted(set(broken))[:40])


def _open(browser, url: str):
    "A page at `url` with its console errors, page errors and requests recorded."
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.problems, page.requests = [], []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: page.problems.append(f"failed to load {r.url}: {r.failure}"))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(url, wait_until="load")
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    return page


@pytest.fixture(scope="session")
def visits(browser, site) -> dict[str, dict]:
    "Every page opened once in Chromium: its problems, requests, images that failed, and its formulas."
    found = {}
    for path in html_pages(site):
        page = _open(browser, path.as_uri())
        found[str(path.relative_to(site))] = {
            "problems": list(page.problems), "requests": list(page.requests),
            "bad_images": page.evaluate("""() => [...document.images]
                .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))"""),
            "math": page.evaluate("() => document.querySelectorAll('.math').length"),
            "typeset": page.evaluate("() => document.querySelectorAll('mjx-container').length"),
            "raw_tex": page.evaluate(r"""() => [...document.querySelectorAll('.math')]
                .filter(e => !e.querySelector('mjx-container') && /\\\(|\\\[|\$\$/.test(e.textContent))
                .map(e => e.textContent.slice(0, 60))"""),
            "mathjax": page.evaluate("() => [...document.scripts].map(s => s.src).filter(s => s.includes('mathjax'))"),
        }
        page.close()
    return found


def test_every_page_loads_clean_with_its_images(visits):
    problems = []
    for name, seen in visits.items():
        problems += [f"{name}: {p}" for p in seen["problems"]]
        problems += [f"{name}: asked the network for {u}" for u in seen["requests"]
                     if urlparse(u).scheme not in ("file", "data", "blob", "about")]
        problems += [f"{name}: image does not load: {src}" for src in seen["bad_images"]]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])


def test_notebook_pages_show_the_cpu_figures(site):
    shown = 0
    for path in site_build.notebooks():
        page = (site / "nbs" / f"{path.stem}.html").read_text(encoding="utf-8")
        for name in _cpu_figures(path):
            assert re.search(rf'<img[^>]+src="[^"]*/{re.escape(name)}\d*\.png"', page), \
                f"nbs/{path.stem}.html does not show the cpu figure {name}.png"
            shown += 1
    assert shown, "no notebook shows a committed cpu figure"


def _ran_at_scale(figure: str) -> bool:
    "Whether the notebook behind `figures/<scale>/<method>/...` has run at that scale (its claims.json is committed)."
    parts = Path(figure).parts
    return len(parts) >= 3 and (ROOT / parts[0] / parts[1] / parts[2] / "claims.json").is_file()


def test_notebooks_show_only_committed_figures():
    "A notebook run at a scale must have every figure it shows of that scale committed (one not yet run there gets a note on the site)."
    missing = [f"nbs/{path.name} shows {match.group(2)}" for path in site_build.notebooks()
               for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "markdown"
               for match in site_build._IMAGE.finditer("".join(cell["source"]))
               if _ran_at_scale(match.group(2)) and not (ROOT / match.group(2)).is_file()]
    assert not missing, "figures not committed (run the notebook at that scale, then commit its figures/):\n" + "\n".join(missing)


def test_formulas_render_offline(visits):
    with_math = {name: seen for name, seen in visits.items() if seen["math"]}
    assert with_math, "no page has a formula: the notebooks' $...$ math was not parsed"
    assert any(name.startswith("nbs/") for name in with_math), "no notebook page has a formula"
    for name, seen in with_math.items():
        assert seen["typeset"] > 0, f"{name}: MathJax typeset nothing"
        assert not seen["raw_tex"], f"{name}: formulas left as TeX: {seen['raw_tex'][:3]}"
        assert seen["mathjax"] and all(s.startswith("file:") for s in seen["mathjax"]), f"MathJax not bundled: {seen['mathjax']}"


def _claims_md_claims() -> list[tuple[str, str]]:
    "Kind and claim of every row of a claims table of figures/cpu/CLAIMS.md (a `## Checks` section holds checks)."
    path = ROOT / "figures" / "cpu" / "CLAIMS.md"
    if not path.is_file(): return []
    claims, in_claims_table, kind = [], False, "paper"
    for line in path.read_text().splitlines():
        if line.startswith("## "): kind = "check" if line[3:].strip().lower().startswith("check") else "paper"
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not cells: in_claims_table = False
        elif not in_claims_table: in_claims_table = cells[0] == "claim"  # a table's header row
        elif not set(cells[0]) <= set("-: "): claims.append((kind, cells[0]))
    return claims


def _normal(text: str) -> str:
    return " ".join(text.split())


def test_claims_page_lists_every_claim_by_kind(browser, site):
    page = _open(browser, (site / "claims.html").as_uri())
    rows = page.evaluate("""() => [...document.querySelectorAll('tr.claim')].map(r => ({
        kind: r.classList.contains('claim-check') ? 'check' : 'paper',
        claim: r.querySelector('.claim-text').textContent}))""")
    links = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    page.close()
    shown = {(r["kind"], _normal(r["claim"])) for r in rows}
    listed = _claims_md_claims()
    assert [k for k, _ in listed].count("paper") > 0, "figures/cpu/CLAIMS.md lists no paper claim"
    missing = [f"{k}: {c}" for k, c in listed if (k, _normal(c)) not in shown]
    assert not missing, f"claims of figures/cpu/CLAIMS.md missing from the claims page (or under the wrong kind): {missing}"
    records = site_build.load_claims().get("cpu", [])
    assert records, "no figures/cpu/*/claims.json"
    for record in records:
        assert (record["kind"], _normal(record["claim"])) in shown, f"{record['kind']} claim not listed: {record['claim']}"
    for page_facts in (site_build.site_notebook(p)[1] for p in site_build.notebooks()):
        if page_facts["claims_label"] and set(page_facts["methods"]) & {r["method"] for r in records}:
            assert any(h and h.startswith(f"nbs/{page_facts['stem']}.html#") for h in links), \
                f"the claims page does not link to the claims cell of nbs/{page_facts['stem']}"


def test_search_finds_a_method(browser, site):
    page = _open(browser, (site / "search.html").as_uri() + "?q=kendall")
    page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0", timeout=20000)
    hits = page.evaluate("() => [...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))")
    assert not page.problems, page.problems
    page.close()
    assert any("nbs/" in h for h in hits), f"search for 'kendall' found no notebook page: {hits}"


def _cpu_figures(path: Path) -> list[str]:
    "The names of the cpu figures that a notebook writes and that are committed."
    nb = json.loads(path.read_text())
    return [args[-1] for cell in nb["cells"] if cell["cell_type"] == "code"
            for args in site_build._calls("".join(cell["source"]), "save_figure")
            if len(args) >= 2 and (ROOT / "figures" / "cpu" / args[-2] / f"{args[-1]}.png").is_file()]


def _method_page(site: Path) -> tuple[Path, str | None]:
    "The newest method notebook with a committed cpu figure, and that figure (the screenshot's subject)."
    for path in reversed(site_build.notebooks()):
        if site_build._section(path.stem) == site_build.METHODS_SECTION and (names := _cpu_figures(path)):
            return site / "nbs" / f"{path.stem}.html", names[0]
    return site / "nbs" / f"{site_build.notebooks()[-1].stem}.html", None


def test_screenshots(browser, site):
    SHOTS.mkdir(exist_ok=True)
    page = _open(browser, (site / "index.html").as_uri())
    assert page.locator("figure img").count(), "the landing page has no headline figure"
    page.screenshot(path=str(SHOTS / "landing.png"), full_page=True)
    page.close()
    method, figure = _method_page(site)
    page = _open(browser, method.as_uri())
    page.screenshot(path=str(SHOTS / "method-top.png"))
    if figure:  # the first cpu figure, with the prose above it
        image = page.locator(f"img[src$='/{figure}.png']").first
        assert image.count(), f"{method.name} does not show {figure}.png"
        image.scroll_into_view_if_needed()
        page.evaluate("() => window.scrollBy(0, -250)")
        page.screenshot(path=str(SHOTS / "method-figure.png"))
    page.close()
    for name in ("landing.png", "method-top.png") + (("method-figure.png",) if figure else ()):
        assert (SHOTS / name).stat().st_size > 10_000, f"{name} looks empty"
