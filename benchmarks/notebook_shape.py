"""How the notebooks read: code-cell sizes, definitions per export cell, and how often an export
cell is followed by a test or example. A measurement for people, not a lint: it never fails.

    python benchmarks/notebook_shape.py [NOTEBOOK ...]      (default: nbs/*.ipynb)

- lines: non-blank lines of a code cell, directives (`#|`) not counted;
- definitions: top-level `def`/`class` statements of an `#| export` cell;
- followed: the next code cell (markdown between is allowed) is not an export cell, i.e. a test,
  an example or a use of what was just defined.
"""
import ast, json, statistics, sys
from pathlib import Path

def code_cells(path):
    cells = json.loads(Path(path).read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]

def source(cell): return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]

def is_export(cell): return any(l.strip() in ("#| export", "#|export", "#| exporti") for l in source(cell).splitlines())

def lines(cell): return sum(1 for l in source(cell).splitlines() if l.strip() and not l.startswith("#|"))

def definitions(cell):
    code = "\n".join(l for l in source(cell).splitlines() if not l.lstrip().startswith(("%", "!")))
    try: tree = ast.parse(code)
    except SyntaxError: return 0
    return sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)

def shape(path):
    cells = code_cells(path)
    sizes = [lines(c) for c in cells if lines(c)]
    exports = [i for i, c in enumerate(cells) if is_export(c)]
    defs = [definitions(cells[i]) for i in exports]
    followed = sum(1 for i in exports if i + 1 < len(cells) and not is_export(cells[i + 1]))
    return dict(notebook=Path(path).stem, cells=len(sizes), median=statistics.median(sizes) if sizes else 0,
                largest=max(sizes, default=0), exports=len(exports),
                defs_per_export=sum(defs) / max(1, sum(d > 0 for d in defs)), followed=followed)

if __name__ == "__main__":
    paths = sys.argv[1:] or sorted(Path("nbs").glob("*.ipynb"))
    print(f"{'notebook':18} {'code cells':>10} {'median':>6} {'largest':>7} {'defs/export':>11} {'export→test':>11}")
    for p in paths:
        s = shape(p)
        print(f"{s['notebook']:18} {s['cells']:>10} {s['median']:>6} {s['largest']:>7} "
              f"{s['defs_per_export']:>11.2f} {s['followed']:>5}/{s['exports']:<5}")
