"""The package's house rules (docs/package.md#the-three-parts-and-their-arrows): every module
says in its first line which part it belongs to, no function runs over 60 lines, and nothing in
the package is there only for the tests. (The arrows between the parts and the absence of import
circles are import-linter's contracts in pyproject.toml, run by .ci/run.)"""

import ast
import re

import pytest

from conftest import ROOT

PACKAGE = ROOT / "bigcats"
MODULES = sorted(PACKAGE.rglob("*.py"))
PART_OF_FOLDER = {
    "lesson": "Lesson:",
    "environment": ("Environment tool:", "Environment tools:"),
    "benchmark": ("Benchmark:", "Benchmark baseline:"),
}
LONGEST_FUNCTION = 60
# where the package's code is used: itself, the notebooks, the scripts, setup
USERS = [*MODULES, *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "scripts").glob("*.py"))]


def first_line(path):
    return (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").splitlines()[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_its_part(path):
    folder = path.parent.name
    expected = ("Command line:", "bigcats:") if folder == "bigcats" else PART_OF_FOLDER[folder]
    assert first_line(path).startswith(expected), f"{path.name}: its first line should start with {expected}"


def long_functions(source, limit=LONGEST_FUNCTION):
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append(f"{node.name} ({length} lines)")
    return found


def test_no_function_over_60_lines():
    found = {str(p.relative_to(ROOT)): long_functions(p.read_text(encoding="utf-8")) for p in MODULES}
    assert not {path: names for path, names in found.items() if names}


def test_a_long_function_is_caught():
    body = "\n".join(f"    x{n} = {n}" for n in range(LONGEST_FUNCTION))
    assert long_functions(f"def short():\n    pass\n\n\ndef long():\n{body}\n") == ["long (61 lines)"]


def defined_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            yield node.name


def test_nothing_in_the_package_only_the_tests_call():
    texts = {path: path.read_text(encoding="utf-8") for path in USERS}
    unused = []
    for path in MODULES:
        for name in defined_names(path):
            word = re.compile(rf"\b{name}\b")
            uses = sum(len(word.findall(text)) - (path == user) for user, text in texts.items())
            if uses == 0:
                unused.append(f"{path.relative_to(ROOT)}: {name}")
    assert not unused, f"used by nothing but tests (move them into the tests, or remove them): {unused}"
