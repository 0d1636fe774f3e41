"""The CI and release kit of the generated repository: every workflow passes actionlint, and every
step that is a command runs green here (workflow_runner.py runs the jobs step by step)."""

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from conftest import DEFAULT_CONFIG, REPO
from test_repository import commit_all, git, init_repo, stock
from workflow_runner import LocalRunner, StepFailed, layered_venv, load, stub

ACTIONLINT = Path(sys.executable).parent / "actionlint"
PRETIX_VENV = REPO / ".venvs" / "pretix"
WORKFLOWS = ("tests.yml", "check.yml", "release.yml")
LOCAL_PYTHON = "%d.%d" % sys.version_info[:2]


def site_packages(venv):
    return next((venv / "lib").glob("python3*/site-packages"))


@pytest.fixture
def generated_repo(run_forge, tmp_path):
    repo = init_repo(tmp_path / "pretix-noderails")
    (repo / "forge.toml").write_text(stock())
    run_forge("generate", "--config", repo / "forge.toml", "--out", repo)
    commit_all(repo, "Generated plugin")
    return repo


@pytest.fixture
def stubs(tmp_path):
    """sudo and gh record their arguments instead of reaching apt mirrors and GitHub."""
    folder, log = tmp_path / "stubs", tmp_path / "stub.log"
    stub(folder, "sudo", f'echo "sudo $*" >> {log}\n')
    stub(folder, "gh", f'echo "gh $*" >> {log}\nfor argument in "$@"; do case "$argument" in assets/*) test -f "$argument";; esac; done\n')
    return folder, log


@pytest.fixture
def pip_finds_the_tool_wheel(monkeypatch, tool_wheel):
    """The shared action's `pip install pretix-forge==<version>` finds our wheel (the other
    steps still install from PyPI, where no pretix-forge is published yet)."""
    monkeypatch.setenv("PIP_FIND_LINKS", str(tool_wheel.parent))


def run_steps(workflow):
    """Names of the `run:` steps of a workflow or action file, with the composite action's steps."""
    document = load(workflow)
    jobs = document["jobs"].values() if "jobs" in document else [{"steps": document["runs"]["steps"]}]
    return {step["name"] for job in jobs for step in job["steps"] if "run" in step}


# -- static checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("config", [None, DEFAULT_CONFIG.parent / "acme-tickets.toml"])
def test_workflows_pass_actionlint(run_forge, tmp_path, config):
    assert shutil.which("shellcheck"), "actionlint checks run: scripts with ShellCheck; make deps installs it"
    repo = init_repo(tmp_path / "repo")
    run_forge("generate", *(["--config", config] if config else []), "--out", repo)
    result = subprocess.run([str(ACTIONLINT), "-no-color"], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (repo / ".github" / "workflows").iterdir()) == sorted(WORKFLOWS)


def test_actionlint_catches_a_broken_workflow(generated_repo):
    workflow = generated_repo / ".github" / "workflows" / "check.yml"
    workflow.write_text(workflow.read_text().replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    needs: nonexistent"))
    result = subprocess.run([str(ACTIONLINT), "-no-color"], cwd=generated_repo, capture_output=True, text=True)
    assert result.returncode != 0 and "nonexistent" in result.stdout


def test_unit_matrix_is_every_python_the_plugin_claims(generated_repo):
    project = tomllib.loads((generated_repo / "pyproject.toml").read_text())["project"]
    claimed = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if c.startswith("Programming Language :: Python :: 3.")]
    matrix = load(generated_repo / ".github" / "workflows" / "tests.yml")["jobs"]["unit"]["strategy"]["matrix"]["python"]
    assert matrix == claimed
    assert project["requires-python"] == ">=" + min(matrix, key=lambda v: tuple(map(int, v.split("."))))


def test_generated_python_parses_with_the_oldest_claimed_python(generated_repo):
    import ast

    matrix = load(generated_repo / ".github" / "workflows" / "tests.yml")["jobs"]["unit"]["strategy"]["matrix"]["python"]
    oldest = min(tuple(map(int, v.split("."))) for v in matrix)
    for path in generated_repo.rglob("*.py"):
        ast.parse(path.read_text(), str(path), feature_version=oldest)


def test_integration_matrix_is_the_oldest_claimed_and_the_newest_pretix(run_forge, tmp_path):
    config = tmp_path / "forge.toml"
    config.write_text(stock(pretix_min_version='"2025.1.0"'))
    repo = tmp_path / "repo"
    run_forge("generate", "--config", config, "--out", repo)
    include = load(repo / ".github" / "workflows" / "tests.yml")["jobs"]["integration"]["strategy"]["matrix"]["include"]
    newest = tomllib.loads((REPO / "compat.toml").read_text())["pretix"]["versions"][-1]
    assert [entry["requirement"] for entry in include] == ["pretix==2025.1.0", "pretix==" + newest]
    conf = (repo / "pretix_noderails" / "conf.py").read_text()
    apps = (repo / "pretix_noderails" / "apps.py").read_text()
    assert "PRETIX_MIN_VERSION = '2025.1.0'" in conf and "compatibility = 'pretix>=' + PRETIX_MIN_VERSION" in apps


def test_linters_are_pinned_like_this_repositorys(generated_repo):
    ours = dict(line.split("==") for line in (REPO / "Tests" / "Python" / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    style = load(generated_repo / ".github" / "workflows" / "tests.yml")["jobs"]["style"]["steps"]
    install = next(step["run"] for step in style if step.get("name") == "Install the linters")
    command, _, requirements = install.partition(" install ")
    assert command == "python -m pip" and all(r.count("==") == 1 for r in requirements.split()), install
    pins = dict(requirement.split("==") for requirement in requirements.split())
    # Every linter a later step runs is pinned, and only those.
    linters = [step["run"] for step in style if step.get("run", "").startswith("python -m ") and step["run"] != install]
    ran = sorted(run.split()[2] for run in linters)
    assert ran == ["flake8", "isort"] and sorted(pins) == ran, (install, ran)
    for name, version in pins.items():
        assert ours[name] == version, f"{name}: the workflow pins {version}, Tests/Python/requirements.txt {ours[name]}"


def test_release_publishes_with_trusted_publishing_and_attestations(generated_repo):
    jobs = load(generated_repo / ".github" / "workflows" / "release.yml")["jobs"]
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"} and publish["environment"] == "pypi"
    action = next(step for step in publish["steps"] if step["uses"].startswith("pypa/gh-action-pypi-publish@"))
    assert action["with"]["attestations"] is True
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    trigger = load(generated_repo / ".github" / "workflows" / "release.yml")["on"]
    assert trigger == {"push": {"tags": ["v*"]}}


# -- running the steps -------------------------------------------------------------------------


def test_every_command_step_of_every_workflow_runs_green_locally(generated_repo, tmp_path, stubs, pip_finds_the_tool_wheel):
    repo = generated_repo
    stub_folder, stub_log = stubs
    git(repo, "tag", "v1.0.0")
    executed = set()

    # tests.yml: the unit tests and linters with this interpreter, the integration tests inside
    # the real pretix of this repository (its newest-pretix entry; `make test-compat` runs the
    # same tests inside the oldest).
    unit_python = layered_venv(tmp_path / "venv-unit", site_packages(Path(sys.prefix)))
    runner = LocalRunner(repo, tmp_path / "run-unit", python_bin=unit_python, stubs=stub_folder)
    for job_id, matrix in (("unit", {"python": LOCAL_PYTHON}), ("style", None)):
        job = runner.run_job(repo / ".github" / "workflows" / "tests.yml", job_id, matrix)
        executed |= {s.name for s in job.steps if s.outcome == "ran"}
    integration_python = layered_venv(tmp_path / "venv-pretix", site_packages(PRETIX_VENV))
    runner = LocalRunner(repo, tmp_path / "run-pretix", python_bin=integration_python, stubs=stub_folder)
    include = load(repo / ".github" / "workflows" / "tests.yml")["jobs"]["integration"]["strategy"]["matrix"]["include"]
    newest = include[-1]
    job = runner.run_job(repo / ".github" / "workflows" / "tests.yml", "integration", newest)
    executed |= {s.name for s in job.steps if s.outcome == "ran"}

    # check.yml and release.yml, with the recorded pretix-forge installed by pip from its wheel.
    runner = LocalRunner(repo, tmp_path / "run-release", python_bin=unit_python, stubs=stub_folder,
                         github={"ref_name": "v1.0.0"})
    check = runner.run_job(repo / ".github" / "workflows" / "check.yml", "drift")
    executed |= {s.name for s in check.steps if s.outcome == "ran"}
    for job_id in ("build", "publish", "github-release"):
        job = runner.run_job(repo / ".github" / "workflows" / "release.yml", job_id)
        executed |= {s.name for s in job.steps if s.outcome == "ran"}

    # Reproducible: the archives carry the tagged commit's time, and SHA256SUMS matches them.
    commit_time = int(git(repo, "log", "-1", "--format=%ct").strip())
    dist = runner.artifacts / "dist"
    sdist = next(dist.glob("*.tar.gz"))
    with tarfile.open(sdist) as archive:
        assert {member.mtime for member in archive.getmembers()} == {commit_time}
    sums = (runner.artifacts / "sha256sums" / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == sorted(p.name for p in dist.iterdir())
    for line in sums:
        digest, name = line.split("  ")
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest
    calls = stub_log.read_text()
    release = next(line for line in calls.splitlines() if line.startswith("gh release create v1.0.0"))
    assert all(f"assets/{name}" in release for name in ["SHA256SUMS", sdist.name, next(dist.glob("*.whl")).name])

    every = set().union(*(run_steps(repo / ".github" / "workflows" / name) for name in WORKFLOWS),
                        run_steps(repo / ".github" / "actions" / "pretix-forge" / "action.yml"))
    assert every - executed == set(), f"command steps never run here: {every - executed}"


def test_check_workflow_fails_on_drift(generated_repo, tmp_path, stubs, pip_finds_the_tool_wheel):
    repo = generated_repo
    client = repo / "pretix_noderails" / "client.py"
    client.write_text(client.read_text() + "# patched in place\n")
    commit_all(repo, "A quick fix in the generated code")
    runner = LocalRunner(repo, tmp_path / "run", stubs=stubs[0])
    with pytest.raises(StepFailed) as failure:
        runner.run_job(repo / ".github" / "workflows" / "check.yml", "drift")
    assert "Check the tree against its config" in str(failure.value) and "changed:  pretix_noderails/client.py" in str(failure.value)


def test_release_refuses_a_tag_that_does_not_name_the_version(generated_repo, tmp_path, stubs, pip_finds_the_tool_wheel):
    runner = LocalRunner(generated_repo, tmp_path / "run", stubs=stubs[0], github={"ref_name": "v9.9.9"})
    with pytest.raises(StepFailed) as failure:
        runner.run_job(generated_repo / ".github" / "workflows" / "release.yml", "build")
    assert "tag v9.9.9 does not name version 1.0.0" in str(failure.value)
    assert not (generated_repo / "dist").exists()
