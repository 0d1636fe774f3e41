"""What `pretix-forge demo` ships and documents; running it is Tests/Demo's job."""

import re
import subprocess

from conftest import REPO

DEMO = REPO / "Demo"


def test_demo_python_is_flake8_and_isort_clean(python_tools):
    for tool in (["flake8", "."], ["isort", "--check-only", "--diff", "."]):
        result = subprocess.run([str(python_tools), "-m", *tool], cwd=DEMO, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_pretix_is_pinned_in_one_place_that_the_test_environment_includes():
    tracked = subprocess.run(["git", "ls-files", "*.txt"], cwd=REPO, capture_output=True, text=True, check=True)
    pins = {name: re.findall(r"^pretix==(\S+)$", (REPO / name).read_text(), re.M) for name in tracked.stdout.split()}
    # The oldest pretix compat.toml claims has its own venv and pin (test_compat.py checks both).
    assert [(name, len(found)) for name, found in pins.items() if found] == [
        ("Demo/requirements.txt", 1), ("Tests/Python/requirements-pretix-oldest.txt", 1)]
    included = re.findall(r"^-r\s+(\S+)$", (REPO / "Tests/Python/requirements-pretix.txt").read_text(), re.M)
    assert included == ["../../Demo/requirements.txt"]


def test_the_organisers_section_starts_with_the_demo():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## From `init` to a branded plugin in pretix (organisers)", 1)[1]
    first_block = section.split("```sh\n", 1)[1]
    assert first_block.startswith("pretix-forge demo --config acme.toml ")


def test_demo_help_lists_its_options(run_forge):
    text = run_forge("demo", "--help").stdout
    for option in ("--config", "--templates", "--port", "--python", "--screenshots"):
        assert option in text
