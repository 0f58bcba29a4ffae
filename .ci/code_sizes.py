"""Module and function sizes of recovery_helpers at a git revision: `python .ci/code_sizes.py [REV]`.

Prints the modules over 400 lines and the functions over 80 lines (the sandbox's moto patches and the policy
tables are data and listed apart), then a one-line summary. REV defaults to the working tree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_LIMIT, FUNCTION_LIMIT = 400, 80


def sources(rev: str | None) -> dict[str, str]:
    if rev is None:
        return {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "recovery_helpers").rglob("*.py")}
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "recovery_helpers"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout.split()
    return {
        n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        for n in names
        if n.endswith(".py")
    }


def functions(tree: ast.AST) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
            out.append((node.name, node.end_lineno - node.lineno + 1))
    return out


def main() -> None:
    rev = sys.argv[1] if len(sys.argv) > 1 else None
    big_modules, big_functions, exempt = [], [], []
    total_lines = 0
    for name, text in sorted(sources(rev).items()):
        lines = len(text.splitlines())
        total_lines += lines
        data = name.startswith("recovery_helpers/sandbox/") or name.endswith("policies.py")
        if lines > MODULE_LIMIT:
            (exempt if data else big_modules).append((name, lines))
        for fn, n in functions(ast.parse(text)):
            if n > FUNCTION_LIMIT:
                (exempt if data else big_functions).append((f"{name}:{fn}", n))
    print(f"revision: {rev or 'working tree'}")
    for label, rows in (("modules over 400 lines", big_modules), ("functions over 80 lines", big_functions),
                        ("exempt (sandbox patches, policy tables)", exempt)):
        print(f"{label}: {len(rows)}")
        for what, n in sorted(rows, key=lambda r: -r[1]):
            print(f"  {n:5d}  {what}")
    print(f"summary: modules>400={len(big_modules)} functions>80={len(big_functions)} lines={total_lines}")


if __name__ == "__main__":
    main()
