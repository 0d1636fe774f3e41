"""A tree is untrusted input: whatever a branch commits (symlinks, a hand-made manifest or journal,
a staging folder, case variants of .git), no pretix-forge command writes, removes or runs anything
outside the files it manages. Every command that opens a tree runs against each hostile shape; a
fingerprint of the whole tree (.git/ included) and of a sentinel folder beside it must show that
nothing outside the managed set changed."""

import hashlib
import json
import os
import shutil
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_repository import MANIFEST, commit_all, git, init_repo, stock

JOURNAL = ".pretix-forge.journal"
STAGING = ".pretix-forge.staging"
HOOK = "#!/bin/sh\necho planted > \"$(git rev-parse --git-dir)/../PWNED\"\n"


def fingerprint(*folders):
    """Every entry under the folders, .git/ included, without following a link: kind, mode, and
    the content's SHA-256 or the link's target."""
    entries = {}
    for folder in folders:
        for directory, names, files in os.walk(folder, followlinks=False):
            for name in names + files:
                path = os.path.join(directory, name)
                info = os.lstat(path)
                if stat.S_ISLNK(info.st_mode):
                    entries[path] = ("link", os.readlink(path))
                elif stat.S_ISREG(info.st_mode):
                    with open(path, "rb") as file:
                        entries[path] = ("file", info.st_mode, hashlib.sha256(file.read()).hexdigest())
                else:
                    entries[path] = ("dir" if stat.S_ISDIR(info.st_mode) else "other", info.st_mode)
    return entries


def outside_managed(entries, repo, managed):
    """The entries that are not a managed file of `repo` (nor a folder holding one)."""
    folders = {os.path.join(repo, *path.split("/")[:depth]) for path in managed for depth in range(1, path.count("/") + 1)}
    files = {os.path.join(repo, path) for path in managed} | {os.path.join(repo, MANIFEST)}
    return {path: entry for path, entry in entries.items() if path not in files and path not in folders}


@pytest.fixture(scope="module")
def pristine(forge, tmp_path_factory):
    """A maintainer's repository with the stock plugin generated and committed, made once and
    copied for every case; and the managed paths of a clean generate."""
    import subprocess

    base = tmp_path_factory.mktemp("pristine")
    repo = init_repo(base / "repo")
    (repo / "forge.toml").write_text(stock())
    subprocess.run([str(forge), "generate", "--config", str(repo / "forge.toml"), "--out", str(repo)], check=True, capture_output=True)
    (repo / "CHANGELOG.md").write_text("mine\n")
    commit_all(repo, "generated")
    managed = sorted(json.loads((repo / MANIFEST).read_text())["files"])
    return repo, managed


def copy_with_sentinel(pristine_repo, folder):
    """A fresh copy of the repository in `folder`, and a sentinel folder beside it: files a hostile
    tree would reach for (an apps.py named like a managed file, a hooks folder, a file to leak)."""
    copy = folder / "repo"
    shutil.copytree(pristine_repo, copy, symlinks=True)
    sentinel = folder / "sentinel"
    (sentinel / "hooks").mkdir(parents=True)
    (sentinel / "apps.py").write_text("# not the tree's\n")
    (sentinel / "secret.txt").write_text("do not print me\n")
    return copy, sentinel


@pytest.fixture
def workspace(pristine, tmp_path):
    repo, managed = pristine
    return *copy_with_sentinel(repo, tmp_path), managed


def manifest_of(repo):
    return json.loads((repo / MANIFEST).read_text())


def write_manifest(repo, manifest):
    (repo / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def commands(repo, tmp_path):
    """Every command that opens a tree, as a user runs it on a branch they checked out."""
    out = tmp_path / "out"
    overlay = tmp_path / "overlay"
    overlay.mkdir(exist_ok=True)
    return {
        "generate": ["generate", "--out", repo],
        "generate --force": ["generate", "--force", "--out", repo],
        "check --tree": ["check", "--tree", repo],
        "build --tree": ["build", "--tree", repo, "--out", out],
        "overlay update": ["overlay", "update", "--tree", repo, "--templates", overlay],
        "recover": ["recover", "--tree", repo],
    }


def run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=()):
    """Runs each command; afterwards nothing outside the managed set may differ, the sentinel
    least of all. Commands in `expect_refusal` must fail naming the problem's file and a fix."""
    before = fingerprint(repo, sentinel)
    results = {}
    for name, args in commands(repo, tmp_path).items():
        result = run_forge(*args, check=False)
        results[name] = result
        after = fingerprint(repo, sentinel)
        changed = {path for path in set(before) | set(after)
                   if outside_managed({path: None}, repo, managed) and before.get(path) != after.get(path)}
        assert not changed, f"`pretix-forge {name}` changed files outside the managed set: {sorted(changed)}\n{result.stderr}"
        assert not (repo / ".git" / "hooks" / "pre-commit").exists()
        if name in expect_refusal:
            assert result.returncode != 0, f"`{name}` should refuse this tree:\n{result.stdout}"
            assert "fix:" in result.stderr, f"`{name}` refused without a fix:\n{result.stderr}"
            assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr
    return results


ALL = ("generate", "generate --force", "check --tree", "build --tree", "overlay update", "recover")
READING = ("check --tree", "build --tree")


# -- the shapes of the issue -------------------------------------------------------------------


def test_a_committed_journal_through_a_symlinked_folder_cannot_plant_a_git_hook(run_forge, workspace, tmp_path):
    repo, sentinel, managed = workspace
    (repo / "h").symlink_to(".git/hooks")
    (repo / JOURNAL).write_text(json.dumps({"install": ["h/pre-commit"], "remove": {}}))
    hook = repo / STAGING / "h" / "pre-commit"
    hook.parent.mkdir(parents=True)
    hook.write_text(HOOK)
    hook.chmod(0o755)
    commit_all(repo, "innocent-looking branch")
    results = run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=ALL)
    check = results["check --tree"]
    assert f"{repo}/{JOURNAL}" in check.stderr and "recover --tree" in check.stderr, check.stderr
    assert "not left by an interrupted pretix-forge run on this machine" in results["recover"].stderr
    assert "git rm -r --cached" in results["recover"].stderr
    # The branch is still committable without a hook running.
    (repo / "CHANGELOG.md").write_text("changed\n")
    commit_all(repo, "next")
    assert not (repo / "PWNED").exists()


def test_a_journal_with_a_forged_seal_and_digests_is_refused(run_forge, workspace, tmp_path):
    """The journal's new format, filled in by someone without this machine's key."""
    repo, sentinel, managed = workspace
    (repo / "h").symlink_to(".git/hooks")
    staged = repo / STAGING / "h" / "pre-commit"
    staged.parent.mkdir(parents=True)
    staged.write_text(HOOK)
    (repo / STAGING / ".pretix-forge.seal").write_text("0" * 64)
    digest = hashlib.sha256(HOOK.encode()).hexdigest()
    (repo / JOURNAL).write_text(json.dumps({"format": 2, "tree": "1:2", "install": [["h/pre-commit", digest]], "remove": {},
                                            "seal": "ab" * 32}))
    run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=ALL)


@pytest.mark.parametrize("target", ["folder", "file"])
def test_a_manifest_listing_paths_through_a_symlink_out_of_the_tree_removes_nothing(run_forge, workspace, tmp_path, target):
    """Shown before: a manifest listing v/apps.py, with v a link to another folder, made
    `generate --force` delete that folder's apps.py."""
    repo, sentinel, managed = workspace
    manifest = manifest_of(repo)
    if target == "folder":
        (repo / "v").symlink_to(sentinel)
        manifest["files"]["v/apps.py"] = sha(sentinel / "apps.py")
        listed = "v"
    else:
        (repo / "leak.py").symlink_to(sentinel / "secret.txt")
        manifest["files"]["leak.py"] = sha(sentinel / "secret.txt")
        listed = "leak.py"
    write_manifest(repo, manifest)
    commit_all(repo, "hostile manifest")
    results = run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=("generate", "generate --force"))
    assert f"{repo}/{listed}" in results["generate --force"].stderr and "symbolic link" in results["generate --force"].stderr
    # check reports the path as drift without reading through the link.
    assert results["check --tree"].returncode == 1 and "do not print me" not in results["check --tree"].stdout


@pytest.mark.parametrize("spelling", [".GIT", ".Git", "sub/.gIt"])
def test_a_manifest_listing_paths_in_a_case_variant_of_git_is_refused(run_forge, workspace, tmp_path, spelling):
    repo, sentinel, managed = workspace
    planted = repo / spelling / "hooks" / "pre-commit"
    planted.parent.mkdir(parents=True)
    planted.write_text(HOOK)
    manifest = manifest_of(repo)
    manifest["files"][f"{spelling}/hooks/pre-commit"] = sha(planted)
    write_manifest(repo, manifest)
    results = run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=ALL[:-1])
    assert "goes into .git" in results["generate"].stderr and "fix:" in results["generate"].stderr
    assert planted.read_text() == HOOK


@pytest.mark.parametrize("where", ["file", "staging", "staging with journal"])
def test_a_symlink_in_place_of_a_managed_file_or_the_staging_folder_is_never_followed(run_forge, workspace, tmp_path, where):
    repo, sentinel, managed = workspace
    if where == "file":
        apps = repo / "pretix_noderails" / "apps.py"
        apps.unlink()
        apps.symlink_to(sentinel / "apps.py")
        refused = ("generate", "generate --force")
    else:
        (repo / STAGING).symlink_to(sentinel)
        if where == "staging with journal":
            (repo / JOURNAL).write_text(json.dumps({"install": ["apps.py"], "remove": {"CHANGELOG.md": sha(repo / "CHANGELOG.md")}}))
        refused = ALL
    results = run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=refused)
    if where == "file":
        assert "do not print me" not in results["check --tree"].stdout
        assert "symbolic link" in results["check --tree"].stdout, results["check --tree"].stdout
    assert (sentinel / "apps.py").read_text() == "# not the tree's\n"


@pytest.mark.parametrize("path", ["../escape.py", "/etc/absolute.py", "", "a/../../escape.py", "nul\u0000.py", "./apps.py", "a//b.py"])
@pytest.mark.parametrize("where", ["manifest", "journal"])
def test_manifest_and_journal_paths_that_cannot_be_inside_the_tree_are_refused(run_forge, workspace, tmp_path, path, where):
    repo, sentinel, managed = workspace
    if where == "manifest":
        manifest = manifest_of(repo)
        manifest["files"][path] = "0" * 64
        write_manifest(repo, manifest)
        refused = ALL[:-1]
    else:
        (repo / JOURNAL).write_text(json.dumps({"install": [path], "remove": {path: "0" * 64}}))
        refused = ALL
    results = run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=refused)
    assert MANIFEST in results["check --tree"].stderr or JOURNAL in results["check --tree"].stderr


@pytest.mark.parametrize("input", ["config", "overlay", "link inside the overlay"])
def test_a_recorded_config_or_overlay_behind_a_link_is_not_read(run_forge, workspace, tmp_path, input):
    repo, sentinel, managed = workspace
    (sentinel / "forge.toml").write_text(stock(version='"6.6.6"'))
    (sentinel / "README.md").write_text("do not print me\n")
    if input == "config":
        (repo / "forge.toml").unlink()
        (repo / "forge.toml").symlink_to(sentinel / "forge.toml")
        expected = "not a regular file"
    else:
        (repo / "overlay").mkdir()
        (repo / "overlay" / "NOTES.md").write_text("ours\n")
        run_forge("generate", "--templates", repo / "overlay", "--out", repo)
        commit_all(repo, "with an overlay")
        managed = sorted(manifest_of(repo)["files"])
        if input == "overlay":
            shutil.rmtree(repo / "overlay")
            (repo / "overlay").symlink_to(sentinel)
            expected = "not a folder"
        else:
            (repo / "overlay" / "README.md").symlink_to(sentinel / "README.md")
            expected = "a template folder holds plain files only"
    results = run_every_command(run_forge, repo, sentinel, managed, tmp_path, expect_refusal=READING + ("generate",))
    assert expected in results["check --tree"].stderr, results["check --tree"].stderr
    assert "do not print me" not in results["check --tree"].stdout and "6.6.6" not in results["check --tree"].stdout


@pytest.mark.parametrize("key", ["license_file", "logo"])
@pytest.mark.parametrize("reference", ["absolute", "climbing", "link"])
def test_the_recorded_config_names_no_file_outside_the_tree(run_forge, workspace, tmp_path, key, reference):
    """The recorded config is the tree's: a branch that points its license_file or logo at a file
    elsewhere must not get it printed by `check --tree` (CI logs) or shipped by `build --tree`."""
    repo, sentinel, _managed = workspace
    secret = sentinel / ("secret.txt" if key == "license_file" else "secret.svg")
    if key == "logo":
        secret.write_text('<svg xmlns="http://www.w3.org/2000/svg"><title>do not print me</title></svg>\n')
    named = {"absolute": str(secret), "climbing": f"../sentinel/{secret.name}", "link": f"linked{secret.suffix}"}[reference]
    if reference == "link":
        os.symlink(secret, repo / named)
    config = (repo / "forge.toml").read_text()
    if key == "license_file":
        config = config.replace('license = "Apache-2.0"', f'license = "MIT"\nlicense_file = "{named}"')
    else:
        config = config.replace("[branding]", f'[branding]\nlogo = "{named}"\nlogo_alt = {{ en = "Logo" }}')
    (repo / "forge.toml").write_text(config)
    before = fingerprint(repo, sentinel)
    checked = run_forge("check", "--tree", repo, check=False)
    built = run_forge("build", "--tree", repo, "--out", tmp_path / "dist", check=False)
    for result in (checked, built):
        said = result.stdout + result.stderr
        assert result.returncode == 1 and "do not print me" not in said, said
        assert ("is a link" if reference == "link" else "is outside the tree") in said, said
    assert not (tmp_path / "dist").exists() and fingerprint(repo, sentinel) == before


def test_dist_output_through_a_committed_link_is_refused(run_forge, workspace, tmp_path):
    repo, sentinel, _ = workspace
    (repo / "dist").symlink_to(sentinel)
    before = fingerprint(sentinel)
    result = run_forge("build", "--out", "dist", cwd=repo, check=False)
    assert result.returncode == 1 and "symbolic link" in result.stderr and "fix:" in result.stderr
    assert fingerprint(sentinel) == before


def test_an_output_staging_folder_checked_out_from_git_is_not_taken_for_an_abandoned_one(run_forge, workspace, tmp_path):
    """build removes staging folders its own killed runs left; one that merely has the name is not its."""
    repo, _, _ = workspace
    decoy = repo / ".dist.forge-staging-999999"
    decoy.mkdir()
    (decoy / "notes.md").write_text("mine\n")
    run_forge("build", "--out", "dist", cwd=repo)
    assert (decoy / "notes.md").read_text() == "mine\n"


def test_check_names_a_leftover_journal_and_the_command_that_finishes_it_and_changes_nothing(run_forge, forge, workspace, tmp_path):
    """A real interrupted run of this machine: check refuses and says `recover`; recover finishes it."""
    import signal
    import subprocess
    import time

    repo, sentinel, managed = workspace
    (repo / "forge.toml").write_text(stock(version='"2.0.0"'))
    env = {**os.environ, "PRETIX_FORGE_TEST_STEP_DELAY_MS": "30"}
    process = subprocess.Popen([str(forge), "generate", "--out", str(repo)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (repo / JOURNAL).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (repo / JOURNAL).exists(), "the kill should land after the commit point"
    before = fingerprint(repo, sentinel)
    check = run_forge("check", "--tree", repo, check=False)
    assert check.returncode == 1
    assert f"{repo}/{JOURNAL}" in check.stderr and f"pretix-forge recover --tree {repo}" in check.stderr
    assert fingerprint(repo, sentinel) == before, "check changed the tree"
    recovered = run_forge("recover", "--tree", repo)
    assert "completed an interrupted pretix-forge run" in recovered.stdout
    assert not (repo / JOURNAL).exists() and not (repo / STAGING).exists()
    assert run_forge("check", "--tree", repo).returncode == 0


# -- random hostile trees ----------------------------------------------------------------------

BAD_PATHS = ["..", "../x.py", "/etc/x.py", "", ".git/hooks/pre-commit", ".GIT/config", "a/.Git/x", "nul\u0000", "./x", "a//b"]


@st.composite
def hostile_trees(draw):
    """A list of operations that turn the pristine repository into a hostile one."""
    operations = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["link-file", "link-folder", "link-in-manifest", "case-git", "journal", "staging", "nested", "bad-path"]))
        operations.append((kind, draw(st.integers(0, 10_000)), draw(st.sampled_from(BAD_PATHS)), draw(st.booleans())))
    return operations


def apply(operation, repo, sentinel, managed):
    kind, number, bad, flag = operation
    managed_path = managed[number % len(managed)]
    target = sentinel / ("hooks" if flag else "apps.py")
    manifest = manifest_of(repo) if (repo / MANIFEST).is_file() and not (repo / MANIFEST).is_symlink() else None
    if kind == "link-file":
        path = repo / managed_path
        if path.is_file() and not path.is_symlink():
            path.unlink()
            path.symlink_to(target)
    elif kind == "link-folder":
        folder = (repo / managed_path).parent
        if folder != repo and folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder)
            folder.symlink_to(sentinel)
    elif kind == "link-in-manifest" and manifest is not None:
        link = repo / f"l{number}"
        if not os.path.lexists(link):
            link.symlink_to(sentinel if flag else sentinel / "apps.py")
        manifest["files"][f"l{number}/apps.py" if flag else f"l{number}"] = sha(sentinel / "apps.py")
        write_manifest(repo, manifest)
    elif kind == "case-git" and manifest is not None:
        planted = repo / (".GIT" if flag else "x/.Git") / "hooks" / "pre-commit"
        planted.parent.mkdir(parents=True, exist_ok=True)
        planted.write_text(HOOK)
        manifest["files"][str(planted.relative_to(repo))] = sha(planted)
        write_manifest(repo, manifest)
    elif kind == "journal":
        if not os.path.lexists(repo / "h"):
            (repo / "h").symlink_to(".git/hooks")
        paths = ["h/pre-commit", bad, managed_path, f"l{number}/apps.py"]
        (repo / JOURNAL).write_text(json.dumps(
            {"format": 2, "tree": "0:0", "install": [[p, "0" * 64] for p in paths], "remove": {p: "0" * 64 for p in paths},
             "seal": "0" * 64} if flag else {"install": paths, "remove": {p: "0" * 64 for p in paths}}))
    elif kind == "staging" and not os.path.lexists(repo / STAGING):
        if flag:
            (repo / STAGING).symlink_to(sentinel)
        else:
            staged = repo / STAGING / "h" / "pre-commit"
            staged.parent.mkdir(parents=True)
            staged.write_text(HOOK)
    elif kind == "nested":
        deep = repo / "docs" / f"n{number}" / "deeper"
        deep.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(deep / "out"):
            (deep / "out").symlink_to(sentinel)
        if manifest is not None:
            manifest["files"][f"docs/n{number}/deeper/out/apps.py"] = sha(sentinel / "apps.py")
            write_manifest(repo, manifest)
    elif kind == "bad-path" and manifest is not None:
        manifest["files"][bad] = "0" * 64
        write_manifest(repo, manifest)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=hostile_trees())
def test_random_hostile_trees_never_change_anything_outside_the_managed_set(run_forge, pristine, tmp_path_factory, operations):
    repo_source, managed = pristine
    base = tmp_path_factory.mktemp("hostile")
    repo, sentinel = copy_with_sentinel(repo_source, base)
    for operation in operations:
        apply(operation, repo, sentinel, managed)
    results = run_every_command(run_forge, repo, sentinel, managed, base)
    for name in READING:
        assert "do not print me" not in results[name].stdout + results[name].stderr
    git(repo, "fsck", "--no-progress")
