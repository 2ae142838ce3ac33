"""The house rules of DESIGN.md, read from the source (AST), so that an arrow against them fails here:

    veriswap/   imports swap, detect, provenance            (nothing imports veriswap; tests may)
    swap/       imports provenance                          (never detect, never veriswap)
    detect/     imports swap's shared parts, provenance     (never veriswap, never a swap stage)
    provenance/ imports none of them; no torch at module level

No importlib.import_module / __import__ (an import the AST cannot see is an arrow nobody reviews), no
cycle between the packages, and no module over 400 lines unless its docstring has a "Long module:" line
saying why splitting would hurt; no function over 80 lines unless the module docstring has a
"Long function: NAME ..." line saying why (issue 12).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("veriswap", "swap", "detect", "provenance")
MAX_LINES = 400
MAX_FUNCTION_LINES = 80
# what may import what (top-level packages); anything not listed is forbidden
ALLOWED = {"veriswap": {"swap", "detect", "provenance"}, "swap": {"provenance"}, "detect": {"swap", "provenance"},
           "provenance": set()}
# the parts of swap detect may use: the records that flow between stages and small shared utilities
# (faces: detection/landmarks/tracking, shared by extract and detect; quality: swap-quality measures the
# detector's model card reports); never a stage (extract, sort, train,
# models, convert, graphic)
DETECT_MAY_USE = {"swap", "swap.alignments", "swap.labels", "swap.video", "swap.errors", "swap.lock", "swap.device",
                  "swap.progress", "swap.samples", "swap.faces", "swap.quality"}
# modules over MAX_LINES that other work in progress owns (their owners split them or add a "Long module:"
# reason line); listed here so the rule holds for everything else and the exceptions stay visible
PENDING_SIZE: Set[str] = set()
# functions over MAX_FUNCTION_LINES in modules other work in progress owns, (module, function)
PENDING_LENGTH: Set[Tuple[str, str]] = set()


def modules(root: Path = ROOT) -> Iterator[Tuple[str, Path]]:
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_pkg else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, path: Path, root: Path = ROOT) -> Iterator[Tuple[str, bool, int]]:
    """(imported module, at module level?, line) for every import in `path`; `from X import name` where
    X.name is a module counts as importing X.name."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    top_level = {id(n) for n in tree.body}
    for stmt in ast.walk(tree):
        nodes: List[Tuple[str, int]] = []
        if isinstance(stmt, ast.Import):
            nodes = [(a.name, stmt.lineno) for a in stmt.names]
        elif isinstance(stmt, ast.ImportFrom):
            base = _resolve(module, is_pkg, stmt)
            nodes = [(base, stmt.lineno)]
            for a in stmt.names:
                sub = f"{base}.{a.name}"
                rel = Path(root, *sub.split("."))
                if rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file():
                    nodes.append((sub, stmt.lineno))
        for name, line in nodes:
            yield name, id(stmt) in top_level or _guarded_top(tree, stmt), line


def _guarded_top(tree: ast.Module, stmt: ast.stmt) -> bool:
    """An import inside a module-level if/try runs at import time too."""
    for top in tree.body:
        if isinstance(top, (ast.If, ast.Try)) and any(n is stmt for n in ast.walk(top)):
            return True
    return False


def dodges(path: Path) -> List[int]:
    """Lines that import by a computed name (importlib.import_module, __import__)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("import_module", "__import__"):
                out.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "importlib" and \
                any(a.name in ("import_module", "__import__") for a in node.names):
            out.append(node.lineno)
    return out


def violations(root: Path = ROOT) -> List[str]:
    out = []
    edges: Dict[str, Set[str]] = {p: set() for p in PACKAGES}
    for module, path in modules(root):
        pkg = module.split(".")[0]
        where = path.relative_to(root)
        for line in dodges(path):
            out.append(f"{where}:{line}: imports by a computed name (importlib/__import__)")
        for name, top, line in imports(module, path, root):
            target = name.split(".")[0]
            if pkg == "provenance" and target == "torch" and top:
                out.append(f"{where}:{line}: provenance imports torch at module level")
            if target not in PACKAGES or target == pkg:
                continue
            edges[pkg].add(target)
            if target not in ALLOWED[pkg]:
                out.append(f"{where}:{line}: {pkg} imports {name} (DESIGN.md: {pkg} may import "
                           f"{', '.join(sorted(ALLOWED[pkg])) or 'none of the others'})")
            elif pkg == "detect" and target == "swap" and not any(
                    name == m or name.startswith(m + ".") for m in DETECT_MAY_USE - {"swap"}) and name != "swap":
                out.append(f"{where}:{line}: detect imports the swap stage {name} (only swap's shared records)")
    out += [f"import cycle between packages: {' -> '.join(c)}" for c in _cycles(edges)]
    return out


def _cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    found, state = [], {}

    def visit(n: str, stack: List[str]) -> None:
        state[n] = 1
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m] if m in stack else [n, m])
            elif m not in state:
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n, [n])
    return found


def oversized(root: Path = ROOT) -> List[str]:
    out = []
    for _, path in modules(root):
        rel = str(path.relative_to(root))
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n > MAX_LINES and "Long module:" not in doc and rel not in PENDING_SIZE:
            out.append(f"{rel}: {n} lines (> {MAX_LINES}; split it, or say why not in a 'Long module:' docstring line)")
    return out


def long_functions(root: Path = ROOT) -> List[Tuple[str, str, int]]:
    """(module, function, lines) for every function or method over MAX_FUNCTION_LINES (nested ones
    count inside their outer function too) whose module docstring has no "Long function:" line naming it."""
    out = []
    for _, path in modules(root):
        tree = ast.parse(path.read_text(), str(path))
        doc = ast.get_docstring(tree) or ""
        reasons = [ln for ln in doc.splitlines() if ln.strip().startswith("Long function:")]
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES and not any(re.search(rf"\b{re.escape(node.name)}\b", r)
                                                      for r in reasons):
                    out.append((str(path.relative_to(root)), node.name, n))
    return out


# ---- the rules on this repository ---------------------------------------------------------------

def test_no_import_against_the_dependency_rule():
    assert violations() == []


def test_no_module_over_400_lines_without_a_reason():
    assert oversized() == []


def test_pending_size_exceptions_are_still_needed():
    """A listed module that got split (or got its reason line) leaves the list."""
    for rel in sorted(PENDING_SIZE):
        p = ROOT / rel
        if p.is_file():
            doc = ast.get_docstring(ast.parse(p.read_text())) or ""
            assert len(p.read_text().splitlines()) > MAX_LINES and "Long module:" not in doc, \
                f"{rel} no longer needs its PENDING_SIZE entry"


def test_no_function_over_80_lines_without_a_reason():
    found = [f"{m}: {name} is {n} lines (> {MAX_FUNCTION_LINES}; split it, or say why not in a "
             f"'Long function: {name} ...' docstring line)" for m, name, n in long_functions()
             if (m, name) not in PENDING_LENGTH]
    assert found == []


def test_pending_length_exceptions_are_still_needed():
    """A listed function that got split (or got its reason line) leaves the list."""
    long = {(m, name) for m, name, _ in long_functions()}
    for entry in sorted(PENDING_LENGTH):
        if (ROOT / entry[0]).is_file():
            assert entry in long, f"{entry} no longer needs its PENDING_LENGTH entry"


def test_the_length_checker(tmp_path):
    body = "def f():\n" + "    x = 1\n" * 80 + "\n\ndef g():\n" + "    x = 1\n" * 79
    house = _house(tmp_path, {"swap/long.py": '"""x"""\n' + body,
                              "swap/ok.py": '"""x\n\nLong function: `f` is one table.\n"""\n' + body})
    assert long_functions(house) == [("swap/long.py", "f", 81)]


# ---- the checker itself catches each kind of arrow (a tiny synthetic house) ----------------------

def _house(tmp: Path, files: Dict[str, str]) -> Path:
    for pkg in PACKAGES:
        (tmp / pkg).mkdir(parents=True, exist_ok=True)
        (tmp / pkg / "__init__.py").write_text('"""x"""\n')
    (tmp / "swap" / "labels.py").write_text('"""x"""\n')
    (tmp / "swap" / "convert").mkdir(exist_ok=True)
    (tmp / "swap" / "convert" / "__init__.py").write_text('"""x"""\n')
    for rel, text in files.items():
        (tmp / rel).write_text(text)
    return tmp


def test_the_checker_fails_on_each_kind_of_arrow(tmp_path):
    assert violations(_house(tmp_path / "ok", {
        "veriswap/cli.py": "import swap.labels, detect, provenance\n",
        "detect/x.py": "from swap import labels\nfrom swap.labels import x\nimport provenance\n",
        "swap/x.py": "from provenance import y\ndef f():\n    import torch\n",
        "provenance/x.py": "def f():\n    import torch\n"})) == []
    cases = {
        "provenance/x.py": "from swap import labels\n",                      # bottom layer imports up
        "swap/x.py": "def f():\n    from detect import score\n",            # swap -> detect (even lazily)
        "detect/x.py": "from veriswap import cli\n",                        # detect -> front door
        "swap/y.py": "from ..veriswap import cli\n",                        # relative, out of the package
        "detect/y.py": "from swap.convert import pipeline\n",               # detect -> a swap stage
        "provenance/y.py": "import torch\n",                                # torch at import time
        "swap/z.py": "import importlib\nm = importlib.import_module('detect.cli')\n",   # a dodge
    }
    for rel, text in cases.items():
        found = violations(_house(tmp_path / rel.replace("/", "_"), {rel: text}))
        assert found and all(rel in v for v in found), (rel, found)
    big = _house(tmp_path / "big", {"swap/big.py": '"""x"""\n' + "x = 1\n" * 401,
                                    "swap/ok.py": '"""x\n\nLong module: one format.\n"""\n' + "x = 1\n" * 401})
    assert oversized(big) == [f"swap/big.py: 402 lines (> {MAX_LINES}; split it, or say why not in a "
                              "'Long module:' docstring line)"]


# ---- the front door ----------------------------------------------------------------------------

def test_import_veriswap_is_light_and_every_notebook_name_resolves():
    import subprocess
    import sys

    code = ("import sys, veriswap, veriswap.cli; "
            "bad = [m for m in ('torch', 'timm', 'cv2', 'av', 'dlib') if m in sys.modules]; "
            "assert not bad, bad; print(veriswap.__version__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    import veriswap

    for name in veriswap.__all__:
        assert getattr(veriswap, name) is not None, name
