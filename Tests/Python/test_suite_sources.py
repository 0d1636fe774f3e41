"""The test suites' own Python that carries lint settings (a setup.cfg beside it) keeps to them."""

import subprocess

import pytest

from conftest import REPO


@pytest.mark.parametrize("folder", ["Tests/Cluster"])
def test_suite_python_is_flake8_and_isort_clean(python_tools, folder):
    for tool in (["flake8", "."], ["isort", "--check-only", "--diff", "."]):
        result = subprocess.run([str(python_tools), "-m", *tool], cwd=REPO / folder, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
