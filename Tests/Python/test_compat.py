"""compat.toml is the one list of the pretix and Python versions generated plugins claim and
`make test` proves them on: the rendered claims, the pins of the test venvs, the venvs
themselves and README.md's compatibility line must all say what it says."""

import re
import subprocess
import tomllib

import pytest

from conftest import REPO
from test_repository import stock
from workflow_runner import load

COMPAT = tomllib.loads((REPO / "compat.toml").read_text())
PRETIX = COMPAT["pretix"]["versions"]
PRETIX_PYTHON = COMPAT["pretix"]["python"]
PYTHONS = COMPAT["python"]["versions"]
# Each pretix venv of `make deps` and the release pinned in its requirements file.
PRETIX_VENVS = [
    (REPO / ".venvs" / "pretix-oldest", REPO / "Tests" / "Python" / "requirements-pretix-oldest.txt", PRETIX[0]),
    (REPO / ".venvs" / "pretix", REPO / "Demo" / "requirements.txt", PRETIX[-1]),
]


def release(version):
    return tuple(int(part) for part in version.split("."))


def test_the_lists_run_oldest_first():
    assert PRETIX == sorted(PRETIX, key=release) and PYTHONS == sorted(PYTHONS, key=release)
    assert len(set(PRETIX)) == len(PRETIX) >= 2 and PYTHONS[-1] == "3.13"


def test_the_generated_claims_come_from_compat_toml(run_forge, tmp_path):
    run_forge("generate", "--out", tmp_path / "plugin")
    root = tmp_path / "plugin"
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=" + PYTHONS[0]
    assert [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")] == PYTHONS
    assert "PRETIX_MIN_VERSION = '%s'" % PRETIX[0] in (root / "pretix_noderails" / "conf.py").read_text()
    jobs = load(root / ".github" / "workflows" / "tests.yml")["jobs"]
    assert jobs["unit"]["strategy"]["matrix"]["python"] == PYTHONS
    integration = jobs["integration"]
    assert [entry["requirement"] for entry in integration["strategy"]["matrix"]["include"]] == [
        "pretix==" + PRETIX[0], "pretix==" + PRETIX[-1]]
    setup = next(step for step in integration["steps"] if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == PRETIX_PYTHON
    readme = " ".join((root / "README.md").read_text().split())
    assert (f"Compatibility: pretix {PRETIX[0]} or newer (tested on {PRETIX[0]} and {PRETIX[-1]}), "
            f"Python {PYTHONS[0]} to {PYTHONS[-1]}.") in readme


def test_readme_states_what_compat_toml_says():
    readme = " ".join((REPO / "README.md").read_text().split())
    line = re.search(r"Compatibility: generated plugins (.*?)\. `compat\.toml`", readme)
    assert line, "README.md lost its compatibility line"
    pythons = ", ".join(PYTHONS[:-1]) + " and " + PYTHONS[-1]
    pretix = ", ".join(PRETIX[:-1]) + " and " + PRETIX[-1]
    assert line.group(1) == (f"claim pretix {PRETIX[0]} or newer and Python {PYTHONS[0]} to {PYTHONS[-1]}; `make test` "
                             f"runs the real-pretix suite on pretix {pretix} and the plugin's unit tests on Python {pythons}")


@pytest.mark.parametrize("venv, requirements, version", PRETIX_VENVS, ids=["oldest", "newest"])
def test_each_pretix_is_pinned_and_runs_on_a_python_it_supports(venv, requirements, version):
    assert f"pretix=={version}" in requirements.read_text().splitlines()
    probe = ("import sys; from importlib.metadata import metadata, version; from packaging.specifiers import SpecifierSet; "
             "python = '%d.%d.%d' % sys.version_info[:3]; "
             "print(version('pretix'), python, python in SpecifierSet(metadata('pretix')['Requires-Python']))")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True)
    installed, python, supported = result.stdout.split()
    assert installed == version and python.rsplit(".", 1)[0] == PRETIX_PYTHON and supported == "True"


@pytest.mark.parametrize("python", PYTHONS)
def test_each_claimed_python_has_its_unit_test_venv(python):
    result = subprocess.run([str(REPO / ".venvs" / f"python-{python}" / "bin" / "python"), "-c",
                             "import sys, pytest, requests; print('%d.%d' % sys.version_info[:2])"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == python


@pytest.mark.parametrize("claim", ["2024.6.0", "2024.7.0rc1", "2023.10.1"])
def test_a_claim_older_than_the_oldest_tested_pretix_is_refused(run_forge, tmp_path, claim):
    config = tmp_path / "forge.toml"
    config.write_text(stock(pretix_min_version=f'"{claim}"'))
    result = run_forge("generate", "--config", config, "--out", tmp_path / "plugin", check=False)
    assert result.returncode != 0
    assert f"pretix {claim} is older than the oldest pretix the plugin is tested on ({PRETIX[0]})" in result.stderr


def test_make_test_runs_the_oldest_pretix_and_every_claimed_python():
    suites = re.search(r"^SUITES := (.*)$", (REPO / "Makefile").read_text(), re.M).group(1).split()
    assert "compat" in suites
    dry_run = subprocess.run(["make", "-n", "--no-print-directory", "test-compat", "PREPARED=1"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    assert re.search(r"PRETIX_VENV=\S*/\.venvs/pretix-oldest [^\n]*REQUIRE_SIDE_BY_SIDE=1 .*?Tests/RealPretix/run\.sh",
                     dry_run.replace("\\\n", " "), re.S)
    assert "for version in " + " ".join(PYTHONS) + "; do" in dry_run
