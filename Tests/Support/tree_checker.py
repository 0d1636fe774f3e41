"""Checks rendered plugin trees for the Swift property test (Tests/PretixForgeTests/PropertyTests.swift).

Run once with a Python that has pretix (hence Django) and esprima installed; it then answers one
JSON request per line on stdin, so hundreds of samples cost one interpreter start:
    request:  {"tree": "/path/to/tree", "probe": "the random text"}
    response: {"problems": ["…", …]}        (empty when the tree passes)
Checks: every .py compiles; every Django template under <module>/templates loads with pretix's
template engine; every .js parses; the probe text survives as an exact Python string literal.
"""

import ast
import json
import os
import sys
from pathlib import Path


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pretix.testutils.settings")
    import django

    django.setup()


def check_tree(tree: Path, probe: str):
    from django.template import Template, TemplateSyntaxError
    import esprima

    problems = []
    literals = set()
    for path in sorted(tree.rglob("*.py")):
        try:
            module = ast.parse(path.read_text(encoding="utf-8"), str(path))
            compile(module, str(path), "exec")
        except SyntaxError as error:
            problems.append(f"{path.relative_to(tree)}: does not compile: {error}")
            continue
        literals.update(node.value for node in ast.walk(module) if isinstance(node, ast.Constant) and isinstance(node.value, str))
    for path in sorted(tree.rglob("*.html")):
        try:
            Template(path.read_text(encoding="utf-8"))
        except TemplateSyntaxError as error:
            problems.append(f"{path.relative_to(tree)}: Django cannot load it: {error}")
    for path in sorted(tree.rglob("*.js")):
        try:
            esprima.parseScript(path.read_text(encoding="utf-8"))
        except esprima.Error as error:
            problems.append(f"{path.relative_to(tree)}: JavaScript does not parse: {error}")
    if probe not in literals:
        problems.append("the text does not appear as an exact Python string literal anywhere")
    return problems


def main():
    setup_django()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            problems = check_tree(Path(request["tree"]), request["probe"])
        except Exception as error:  # report, never die: the Swift side reads one answer per request
            problems = [f"checker error: {type(error).__name__}: {error}"]
        sys.stdout.write(json.dumps({"problems": problems}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
