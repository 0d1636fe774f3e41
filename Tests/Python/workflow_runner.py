"""Runs the jobs of a generated repository's GitHub workflows on this machine, step by step.

Every `run:` step is executed as GitHub would run it (bash -eo pipefail, in the repository, with
GITHUB_OUTPUT / GITHUB_ENV / GITHUB_PATH honoured and `${{ }}` expressions evaluated). The `uses:`
steps are emulated where the emulation is exact enough to matter and refused otherwise, so a new
action in a template makes the test fail until someone decides how to run it here:

- actions/checkout: nothing to do, the repository is the working directory;
- actions/setup-python: the requested version must be this interpreter's (others are not installed
  here); `python` then comes from a throw-away virtualenv layered over a prepared one;
- actions/cache: a hit when the cached path exists (the test puts a pretix-forge binary there);
- actions/upload-artifact / download-artifact: copied through a local store;
- local composite actions (./.github/actions/...): their steps run the same way;
- pypa/gh-action-pypi-publish: recorded, never run (it uploads to PyPI).

Commands that need the outside world are stubbed on PATH by the caller (see `stub`).
"""

import os
import re
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class StepFailed(AssertionError):
    pass


@dataclass
class StepRecord:
    name: str
    outcome: str  # "ran", "skipped (if)", "emulated", "recorded"
    detail: str = ""


@dataclass
class Job:
    steps: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)

    def ran(self, name):
        return any(s.name == name and s.outcome == "ran" for s in self.steps)


def load(path):
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    document = yaml.safe_load(Path(path).read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


def layered_venv(path, base_site_packages):
    """A virtualenv that sees the packages of `base_site_packages` (through a .pth file) but
    installs into itself, so `pip install` steps cannot change the prepared environment."""
    venv.EnvBuilder(with_pip=True, symlinks=True).create(path)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = Path(path) / "lib" / version / "site-packages"
    (site / "zz-layered.pth").write_text(str(base_site_packages) + "\n")
    return Path(path) / "bin"


def stub(folder, name, script):
    """A command on PATH standing in for one that needs the outside world."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/bash\nset -eo pipefail\n" + script)
    path.chmod(0o755)


class LocalRunner:
    def __init__(self, repo, scratch, *, python_bin=None, stubs=None, github=None, artifacts=None):
        self.repo = Path(repo)
        self.scratch = Path(scratch)
        self.python_bin = python_bin
        self.stubs = stubs
        self.github = {"ref_name": "main", "repository": "example/pretix-plugin", "token": "stub-token", **(github or {})}
        self.artifacts = Path(artifacts or self.scratch / "artifacts")
        self.home = self.scratch / "home"
        self.temp = self.scratch / "runner-temp"
        for folder in (self.artifacts, self.home, self.temp):
            folder.mkdir(parents=True, exist_ok=True)

    # -- jobs and steps -------------------------------------------------------------------------

    def run_job(self, workflow, job_id, matrix=None):
        document = load(workflow)
        job_document = document["jobs"][job_id]
        env = {**document.get("env", {}), **job_document.get("env", {})}
        job = Job()
        context = {"matrix": matrix or {}, "steps": {}, "env": {}, "inputs": {}}
        self.extra_path = []
        self.job_env = {}
        self._run_steps(job_document["steps"], env, context, job, self.repo)
        return job

    def _run_steps(self, steps, env, context, job, base_dir):
        for index, step in enumerate(steps):
            name = step.get("name") or step.get("uses") or step.get("run", "").splitlines()[0]
            if "if" in step and not self._condition(step["if"], context):
                job.steps.append(StepRecord(name, "skipped (if)"))
                continue
            step_env = {**env, **step.get("env", {})}
            step_env = {key: self._expand(str(value), context) for key, value in step_env.items()}
            context["env"] = step_env
            outputs = {}
            if "run" in step:
                outputs = self._run(step["run"], step_env, Path(base_dir, step.get("working-directory", ".")), name)
                job.steps.append(StepRecord(name, "ran"))
            else:
                outputs = self._uses(step, step_env, context, job, name)
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": outputs}

    def _run(self, script, env, cwd, name):
        scratch = self.scratch / "step"
        scratch.mkdir(exist_ok=True)
        files = {key: scratch / key.lower() for key in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
        for path in files.values():
            path.write_text("")
        path = [str(self.stubs)] if self.stubs else []
        path += self.extra_path + ([str(self.python_bin)] if self.python_bin else []) + [os.environ["PATH"]]
        full_env = {
            "HOME": str(self.home), "RUNNER_TEMP": str(self.temp), "RUNNER_OS": "Linux", "CI": "true",
            "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.repo), "GITHUB_REF_NAME": self.github["ref_name"],
            "GITHUB_REPOSITORY": self.github["repository"], "PATH": os.pathsep.join(path),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", **self.job_env, **env, **{k: str(v) for k, v in files.items()},
        }
        for key in ("PIP_FIND_LINKS", "PIP_CERT", "SSL_CERT_FILE", "LANG"):
            if key in os.environ:
                full_env.setdefault(key, os.environ[key])
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=full_env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise StepFailed(f"step '{name}' exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        self.job_env.update(self._pairs(files["GITHUB_ENV"].read_text()))
        self.extra_path = [line for line in files["GITHUB_PATH"].read_text().splitlines() if line] + self.extra_path
        return self._pairs(files["GITHUB_OUTPUT"].read_text())

    @staticmethod
    def _pairs(text):
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def _uses(self, step, env, context, job, name):
        action = step["uses"]
        # Inputs reach actions as strings; YAML's true is GitHub's "true".
        inputs = {key: self._expand(str(value).lower() if isinstance(value, bool) else str(value), context)
                  for key, value in step.get("with", {}).items()}
        if action.startswith("./"):
            return self._composite(self.repo / action, inputs, env, job)
        base = action.split("@", 1)[0]
        if base == "actions/checkout":
            job.steps.append(StepRecord(name, "emulated", "the repository is the working directory"))
            return {}
        if base == "actions/setup-python":
            wanted = inputs.get("python-version")
            local = "%d.%d" % sys.version_info[:2]
            if wanted != local:
                raise StepFailed(f"setup-python {wanted}: only Python {local} is installed here; run another matrix entry")
            job.steps.append(StepRecord(name, "emulated", f"python {local}"))
            return {"python-version": local}
        if base == "actions/cache":
            hit = Path(inputs["path"]).exists() and any(Path(inputs["path"]).iterdir())
            job.steps.append(StepRecord(name, "emulated", "hit" if hit else "miss"))
            return {"cache-hit": "true" if hit else "false"}
        if base == "actions/upload-artifact":
            target = self.artifacts / inputs["name"]
            source = Path(self.repo, inputs["path"])
            target.mkdir(parents=True, exist_ok=True)
            for item in ([source] if source.is_file() else sorted(source.iterdir())):
                shutil.copy2(item, target / item.name)
            job.steps.append(StepRecord(name, "emulated", f"artifact {inputs['name']}"))
            return {}
        if base == "actions/download-artifact":
            target = Path(self.repo, inputs.get("path", "."))
            target.mkdir(parents=True, exist_ok=True)
            names = [inputs["name"]] if "name" in inputs else sorted(p.name for p in self.artifacts.iterdir())
            if "name" not in inputs and inputs.get("merge-multiple") != "true":
                raise StepFailed("download-artifact without a name and without merge-multiple: emulation not written")
            for artifact in names:
                for item in sorted((self.artifacts / artifact).iterdir()):
                    shutil.copy2(item, target / item.name)
            job.steps.append(StepRecord(name, "emulated", f"artifacts {names}"))
            return {}
        if base == "pypa/gh-action-pypi-publish":
            job.steps.append(StepRecord(name, "recorded", repr(inputs)))
            return {}
        raise StepFailed(f"no local emulation for {action}; add one to workflow_runner.py")

    def _composite(self, folder, inputs, env, job):
        document = load(folder / "action.yml")
        runs = document["runs"]
        assert runs["using"] == "composite", runs
        context = {"matrix": {}, "steps": {}, "env": {}, "inputs": inputs}
        self._run_steps(runs["steps"], env, context, job, self.repo)
        return {key: self._expand(str(spec["value"]), context) for key, spec in document.get("outputs", {}).items()}

    # -- expressions ------------------------------------------------------------------------------

    def _value(self, expression, context):
        parts = expression.split(".")
        if parts[0] in ("matrix", "inputs", "env"):
            return str(context[parts[0]].get(parts[1], ""))
        if parts[0] == "steps":
            return str(context["steps"].get(parts[1], {}).get("outputs", {}).get(parts[3], ""))
        if parts[0] == "github":
            return str(self.github[parts[1]])
        if parts[0] == "runner":
            return {"os": "Linux", "arch": "X64", "temp": str(self.temp)}[parts[1]]
        raise StepFailed(f"expression not supported by the local runner: {expression}")

    def _expand(self, text, context):
        return EXPRESSION.sub(lambda match: self._value(match.group(1), context), text)

    def _condition(self, condition, context):
        match = re.fullmatch(r"\s*(?:\$\{\{\s*)?([\w.-]+)\s*(==|!=)\s*'([^']*)'\s*(?:\}\})?\s*", condition)
        if not match:
            raise StepFailed(f"condition not supported by the local runner: {condition}")
        left, operator, right = match.groups()
        equal = self._value(left, context) == right
        return equal if operator == "==" else not equal
