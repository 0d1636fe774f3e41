"""The plugin kept in a git repository of its own: regenerating after a config change touches only
the files pretix-forge manages, refuses hand edits, survives SIGKILL, and `check --tree` tells
managed drift from the maintainer's own files."""

import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import tarfile
import time
import zipfile

import pytest

from conftest import DEFAULT_CONFIG, REPO

MANIFEST = ".pretix-forge.json"
BLOCKFEST = DEFAULT_CONFIG.parent / "blockfest"
SCRATCH = (".pretix-forge.staging", ".pretix-forge.journal")


def git(repo, *args, check=True):
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def init_repo(path):
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "maintainer@example.org")
    git(path, "config", "user.name", "Maintainer")
    return path


def commit_all(repo, message):
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def snapshot(folder, scratch=True):
    """Every file except .git/ (and, with scratch=False, pretix-forge's journal and staging), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(folder).parts
            and (scratch or p.relative_to(folder).parts[0] not in SCRATCH)}


def stock(**replacements):
    """The stock config with `key = value` lines replaced (values are TOML)."""
    lines = []
    for line in DEFAULT_CONFIG.read_text().splitlines():
        key = line.split(" =", 1)[0]
        # "# key" uncomments an optional key of the starter file.
        lines.append(f"{key.removeprefix('# ')} = {replacements[key]}" if key in replacements else line)
    return "\n".join(lines) + "\n"


def porcelain(repo):
    return sorted(line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines())


@pytest.fixture
def plugin_repo(run_forge, tmp_path):
    """A maintainer's repository: the generated tree, its config, a workflow and a changelog of
    their own, all committed, plus an untracked scratch file."""
    repo = init_repo(tmp_path / "pretix-noderails")
    (repo / "forge.toml").write_text(stock())
    run_forge("generate", "--config", repo / "forge.toml", "--out", repo)
    (repo / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (repo / ".github" / "workflows" / "ci.yml").write_text("name: mine\non: push\njobs: {}\n")
    (repo / "CHANGELOG.md").write_text("# Changes\n\n## 1.0.0\n- first release\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "operations.md").write_text("How we run it.\n")
    commit_all(repo, "Generated plugin")
    (repo / "scratch.txt").write_text("not committed\n")
    return repo


def own_files(repo):
    return {path: data for path, data in snapshot(repo).items()
            if path in ("forge.toml", ".github/workflows/ci.yml", "CHANGELOG.md", "docs/operations.md", "scratch.txt")}


# -- regenerating after a config change --------------------------------------------------------


def test_regenerating_after_a_config_change_keeps_git_and_every_unmanaged_file(run_forge, plugin_repo):
    repo = plugin_repo
    head = git(repo, "rev-parse", "HEAD")
    mine = own_files(repo)
    (repo / "forge.toml").write_text(stock(version='"1.1.0"', poll_interval_seconds="5"))
    mine["forge.toml"] = (repo / "forge.toml").read_bytes()

    result = run_forge("generate", "--out", repo)
    assert "config: " in result.stderr and "forge.toml (recorded in" in result.stderr
    assert "changed" in result.stdout

    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "fsck", "--no-progress") == ""
    assert own_files(repo) == mine
    manifest = json.loads((repo / MANIFEST).read_text())
    changed = set(porcelain(repo))
    # Only the config (the maintainer's edit), the manifest and managed files changed.
    assert changed - set(manifest["files"]) <= {"forge.toml", MANIFEST, "scratch.txt"}
    # The version and the poll interval are rendered into conf.py (every non-text config value) only.
    assert {"pyproject.toml", "pretix_noderails/conf.py"} <= changed
    assert "VERSION = '1.1.0'" in (repo / "pretix_noderails" / "conf.py").read_text()
    assert '1.1.0' in (repo / "pyproject.toml").read_text()
    assert run_forge("check", "--tree", repo).returncode == 0


def test_a_file_the_config_no_longer_produces_is_removed_and_nothing_else(run_forge, plugin_repo):
    repo = plugin_repo
    shutil.copy(BLOCKFEST / "logo.svg", repo / "logo.svg")
    (repo / "forge.toml").write_text(stock(**{"# logo": '"logo.svg"', "# logo_alt": '{ en = "Blockfest", de = "Blockfest" }'}))
    run_forge("generate", "--out", repo)
    logo = "pretix_noderails/static/pretix_noderails/logo.svg"
    assert (repo / logo).is_file()
    commit_all(repo, "Logo")
    mine = own_files(repo)
    (repo / "forge.toml").write_text(stock())
    mine["forge.toml"] = (repo / "forge.toml").read_bytes()
    run_forge("generate", "--out", repo)
    assert not (repo / logo).exists() and (repo / "logo.svg").is_file()
    assert own_files(repo) == mine
    managed = set(json.loads((repo / MANIFEST).read_text())["files"])
    assert logo in porcelain(repo) and set(porcelain(repo)) <= managed | {logo, MANIFEST, "forge.toml", "scratch.txt"}


def test_an_edited_managed_file_stops_generate_with_its_name_and_diff(run_forge, plugin_repo):
    repo = plugin_repo
    payment = repo / "pretix_noderails" / "client.py"
    payment.write_text(payment.read_text().replace("class NodeRailsClient:", "class NodeRailsClient:  # our tweak", 1))
    (repo / "forge.toml").write_text(stock(http_timeout_seconds="20"))
    before = snapshot(repo)

    refused = run_forge("generate", "--out", repo, check=False)
    assert refused.returncode == 1
    assert "pretix_noderails/client.py: error: edited by hand since pretix-forge wrote it" in refused.stderr
    assert "-class NodeRailsClient:  # our tweak" in refused.stderr and "+class NodeRailsClient:" in refused.stderr
    assert "OVERLAY/__module__/client.py" in refused.stderr and "--force" in refused.stderr
    assert snapshot(repo) == before, "a refused generate must not change anything"

    run_forge("generate", "--out", repo, "--force")
    assert "# our tweak" not in payment.read_text()
    assert own_files(repo)["CHANGELOG.md"] == before["CHANGELOG.md"]


def test_a_file_of_the_maintainers_where_a_new_managed_file_goes_is_not_overwritten(run_forge, tmp_path):
    repo = init_repo(tmp_path / "repo")
    (repo / "forge.toml").write_text(stock(gitignore="false"))
    run_forge("generate", "--config", repo / "forge.toml", "--out", repo)
    (repo / ".gitignore").write_text("my-own-rules/\n")
    (repo / "forge.toml").write_text(stock())
    refused = run_forge("generate", "--out", repo, check=False)
    assert refused.returncode == 1 and ".gitignore: error: pretix-forge did not write this file" in refused.stderr
    assert (repo / ".gitignore").read_text() == "my-own-rules/\n"


def test_a_folder_without_manifest_is_refused_and_adopted_on_request(run_forge, tmp_path):
    rendered = tmp_path / "rendered"
    run_forge("generate", "--out", rendered)
    repo = init_repo(tmp_path / "existing")
    for path, data in snapshot(rendered).items():
        if path != MANIFEST and not path.startswith("tests/"):
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_bytes(data)
    (repo / "NOTES.md").write_text("mine\n")
    commit_all(repo, "Hand-made copy")
    before = snapshot(repo)

    refused = run_forge("generate", "--out", repo, check=False)
    assert refused.returncode == 1 and "holds files but no .pretix-forge.json" in refused.stderr and "--adopt" in refused.stderr
    assert snapshot(repo) == before

    (repo / "README.md").write_text("our own readme\n")
    differs = run_forge("generate", "--out", repo, "--adopt", check=False)
    assert differs.returncode == 1 and "README.md: error: pretix-forge did not write this file" in differs.stderr

    (repo / "README.md").write_bytes(before["README.md"])
    adopted = run_forge("generate", "--out", repo, "--adopt")
    assert "adopted" in adopted.stdout and "added" in adopted.stdout
    assert (repo / "NOTES.md").read_text() == "mine\n" and (repo / "tests" / "test_webhook.py").is_file()
    assert "NOTES.md" not in json.loads((repo / MANIFEST).read_text())["files"]
    assert run_forge("check", "--tree", repo).returncode == 0


def test_git_init_then_generate_needs_no_adopt(run_forge, tmp_path):
    repo = init_repo(tmp_path / "fresh")
    run_forge("generate", "--out", repo)
    assert (repo / ".git" / "HEAD").is_file() and (repo / MANIFEST).is_file()


# -- check --tree ------------------------------------------------------------------------------


def test_check_compares_managed_files_and_lists_the_rest_as_information(run_forge, plugin_repo):
    repo = plugin_repo
    clean = run_forge("check", "--tree", repo)
    assert "up to date" in clean.stdout
    assert "not managed by pretix-forge (information, not drift)" in clean.stdout
    for own in ("CHANGELOG.md", ".github/workflows/ci.yml", "docs/operations.md", "scratch.txt"):
        assert f"  {own}\n" in clean.stdout
    assert ".git/" not in clean.stdout and "forge.toml" not in clean.stdout, "the repository and the config are not reported"

    (repo / "forge.toml").write_text(stock(unmanaged='["docs/**", "CHANGELOG.md"]'))
    run_forge("generate", "--out", repo)
    quiet = run_forge("check", "--tree", repo)
    assert "docs/operations.md" not in quiet.stdout and "CHANGELOG.md" not in quiet.stdout
    assert "2 files under [repository] unmanaged patterns" in quiet.stdout

    (repo / "pretix_noderails" / "helpers.py").write_text("x = 1\n")
    unshipped = run_forge("check", "--tree", repo, check=False)
    assert unshipped.returncode == 1 and "added:    pretix_noderails/helpers.py" in unshipped.stdout
    assert "not part of the sdist or wheel" in unshipped.stdout


def test_check_says_why_before_the_byte_level_diff(run_forge, plugin_repo):
    repo = plugin_repo
    manifest = json.loads((repo / MANIFEST).read_text())
    manifest["forge_version"] = "0.0.9"
    (repo / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (repo / "forge.toml").write_text(stock(poll_interval_seconds="7"))
    report = run_forge("check", "--tree", repo, check=False)
    assert report.returncode == 1
    lines = report.stdout.splitlines()
    assert "generated by pretix-forge 0.0.9; this is pretix-forge" in lines[0]
    assert "the config changed since the tree was generated" in lines[1]
    first_diff = next(i for i, line in enumerate(lines) if line.startswith("  changed:"))
    assert first_diff > 1
    assert f"to repair: pretix-forge generate --out {repo}" in report.stdout


def test_check_dist_names_the_forge_version_that_built_the_files(run_forge, tmp_path):
    dist = tmp_path / "dist"
    run_forge("build", "--out", dist)
    wheel, sdist = dist / "pretix_noderails-1.0.0-py3-none-any.whl", dist / "pretix_noderails-1.0.0.tar.gz"
    older = tmp_path / "older"
    older.mkdir()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(older / wheel.name, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".dist-info/WHEEL"):
                data = data.replace(b"Generator: pretix-forge 0.1.0", b"Generator: pretix-forge 0.0.9")
            target.writestr(info, data)
    with tarfile.open(sdist) as source, tarfile.open(older / sdist.name, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("/" + MANIFEST):
                data = data.replace(b'"forge_version": "0.1.0"', b'"forge_version": "0.0.9"')
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    for name in (wheel.name, sdist.name):
        report = run_forge("check", "--dist", older / name, check=False)
        assert report.returncode == 1
        assert report.stdout.splitlines()[0].endswith(
            "built by pretix-forge 0.0.9; this is pretix-forge 0.1.0. Differences may come from the forge version: "
            "check with pretix-forge 0.0.9, or rebuild with 0.1.0."), report.stdout
    assert run_forge("check", "--dist", wheel, sdist, dist / "SHA256SUMS").returncode == 0


# -- atomicity ---------------------------------------------------------------------------------


def test_sigkill_during_generate_leaves_the_managed_set_all_old_or_all_new(forge, run_forge, tmp_path):
    """Kills land at random moments while generate rewrites a git work tree; the step-delay hook
    (debug builds only) stretches the write so kills hit staging and the journal's commit phase.
    After `recover`, every file is as before the run or as after it."""
    repo = init_repo(tmp_path / "repo")
    (repo / "forge-a.toml").write_text(stock())
    run_forge("generate", "--config", repo / "forge-a.toml", "--out", repo)
    # A module rename: most managed files are removed and as many added under a new folder.
    (repo / "forge-b.toml").write_text(stock(module='"pretix_renamed"', version='"2.0.0"'))
    (repo / "CHANGELOG.md").write_text("mine\n")
    commit_all(repo, "A")
    (repo / "scratch.txt").write_text("untracked\n")
    old = snapshot(repo)
    expected_new = tmp_path / "expected-new"
    shutil.copytree(repo, expected_new, symlinks=True)
    run_forge("generate", "--config", expected_new / "forge-b.toml", "--out", expected_new)
    new = snapshot(expected_new)
    assert old != new

    env = {**os.environ, "PRETIX_FORGE_TEST_STEP_DELAY_MS": "8"}
    # How long one slowed-down run takes on this machine right now, so the kills spread over it.
    started = time.monotonic()
    run_forge("generate", "--config", repo / "forge-b.toml", "--out", repo, env=env)
    duration = time.monotonic() - started
    assert snapshot(repo) == new
    run_forge("generate", "--config", repo / "forge-a.toml", "--out", repo)
    assert snapshot(repo) == old
    rng = random.Random(13)
    phases, outcomes, half_moved = [], set(), 0
    while len(phases) < 12 or ({"staging", "commit"} - set(phases) or not half_moved) and len(phases) < 40:
        process = subprocess.Popen([str(forge), "generate", "--config", str(repo / "forge-b.toml"), "--out", str(repo)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.0) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait()
        journal, staging = (repo / ".pretix-forge.journal").exists(), (repo / ".pretix-forge.staging").exists()
        phases.append("commit" if journal else "staging" if staging else "outside")
        if journal and snapshot(repo, scratch=False) not in (old, new):
            half_moved += 1
        # A reading command refuses the interrupted tree and changes nothing; recover finishes the run.
        if journal or staging:
            left = snapshot(repo)
            refused = run_forge("check", "--tree", repo, check=False)
            assert refused.returncode == 1 and "pretix-forge recover --tree" in refused.stderr, refused.stderr
            assert snapshot(repo) == left
        run_forge("recover", "--tree", repo)
        state = snapshot(repo)
        assert state in (old, new), f"killed in phase {phases[-1]}: the tree is neither all old nor all new"
        assert git(repo, "fsck", "--no-progress") == "" and (repo / "scratch.txt").read_text() == "untracked\n"
        outcomes.add("new" if state == new else "old")
        if state == new:
            run_forge("generate", "--config", repo / "forge-a.toml", "--out", repo)
            assert snapshot(repo) == old
    print("kill phases:", phases, "outcomes:", outcomes, "half-moved:", half_moved)
    # The test proves something only if kills landed inside the write, including after the commit point.
    assert {"staging", "commit"} <= set(phases), phases
    assert "old" in outcomes and "new" in outcomes, (phases, outcomes)
    assert half_moved > 0, "no kill caught the files half-moved; the journal was never needed"


# -- the repository kit ------------------------------------------------------------------------


def test_gitignore_keeps_every_managed_file_committable(run_forge, tmp_path):
    repo = init_repo(tmp_path / "repo")
    run_forge("generate", "--out", repo)
    managed = sorted(json.loads((repo / MANIFEST).read_text())["files"]) + [MANIFEST]
    ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "--no-index", *managed], capture_output=True, text=True)
    assert ignored.stdout == "", f"the generated .gitignore hides managed files: {ignored.stdout}"
    commit_all(repo, "all")
    tracked = set(git(repo, "ls-files").split())
    assert set(managed) <= tracked
    assert "pretix_noderails/locale/de/LC_MESSAGES/django.mo" in tracked
    # Local litter stays out of git.
    for litter in ("pretix_noderails/__pycache__/x.pyc", ".venv/bin/python", "dist/x.whl", ".pretix-forge.staging/a"):
        (repo / litter).parent.mkdir(parents=True, exist_ok=True)
        (repo / litter).write_text("x")
    assert porcelain(repo) == []


def test_the_kit_can_be_switched_off_and_its_files_are_removed(run_forge, plugin_repo):
    repo = plugin_repo
    (repo / "forge.toml").write_text(stock(workflows="false", gitignore="false"))
    run_forge("generate", "--out", repo)
    assert not (repo / ".github" / "workflows" / "tests.yml").exists() and not (repo / ".gitignore").exists()
    assert not (repo / ".github" / "actions").exists()
    assert (repo / ".github" / "workflows" / "ci.yml").is_file(), "the maintainer's own workflow stays"


# -- overlays across forge upgrades ------------------------------------------------------------


def builtin(path):
    return (REPO / "Templates" / path).read_text()


def pretend_older_forge_base(repo, path, old_base):
    """Rewrite the manifest as an older pretix-forge would have left it: its built-in `path` was `old_base`."""
    manifest = json.loads((repo / MANIFEST).read_text())
    manifest["overlay"]["replaces"][path] = {"forge_version": "0.0.9", "text": old_base,
                                             "sha256": hashlib.sha256(old_base.encode()).hexdigest()}
    (repo / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def test_overlay_adds_files_and_removing_them_removes_them(run_forge, plugin_repo):
    repo = plugin_repo
    overlay = repo / "overlay"
    french = overlay / "__module__" / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    french.parent.mkdir(parents=True)
    po = (REPO / "Templates" / "__module__" / "locale" / "de" / "LC_MESSAGES" / "django.po").read_text()
    french.write_text(po.replace("Language: de", "Language: fr"))
    (overlay / "extra").mkdir()
    (overlay / "extra" / "settings.md").write_text("# Settings of <% package.name %>\n")
    run_forge("generate", "--templates", overlay, "--out", repo)
    assert (repo / "extra" / "settings.md").read_text() == "# Settings of pretix-noderails\n"
    assert (repo / "pretix_noderails" / "locale" / "fr" / "LC_MESSAGES" / "django.mo").is_file()
    manifest = json.loads((repo / MANIFEST).read_text())
    assert manifest["overlay"]["folder"] == "overlay" and "extra/settings.md" in manifest["overlay"]["adds"]
    assert run_forge("check", "--tree", repo).returncode == 0, "the recorded overlay is used without --templates"
    shutil.rmtree(overlay / "extra")
    run_forge("generate", "--out", repo)
    assert not (repo / "extra").exists()


def test_overlay_warns_when_its_builtin_changed_and_update_merges_or_marks_conflicts(run_forge, plugin_repo, tmp_path):
    repo = plugin_repo
    overlay = repo / "overlay"
    clean_path, conflict_path = "README.md", "__module__/templates/__module__/error.html"
    readme, error_page = builtin(clean_path).splitlines(keepends=True), builtin(conflict_path).splitlines(keepends=True)
    assert len(readme) > 12 and len(error_page) > 3
    # The maintainer's overlays: README with a line of their own at the top; the error page with its last line changed.
    (overlay / "__module__" / "templates" / "__module__").mkdir(parents=True)
    (overlay / clean_path).write_text("Maintained by the Acme box office.\n" + "".join(readme))
    (overlay / conflict_path).write_text("".join(error_page[:-1]) + "<p>Call the box office.</p>\n")
    run_forge("generate", "--templates", overlay, "--out", repo)
    replaces = json.loads((repo / MANIFEST).read_text())["overlay"]["replaces"]
    for path in (clean_path, conflict_path):
        assert replaces[path]["sha256"] == hashlib.sha256(builtin(path).encode()).hexdigest()
        assert replaces[path]["text"] == builtin(path), "the replaced built-in is recorded as the base of later merges"
    quiet = run_forge("generate", "--out", repo)
    assert "warning" not in quiet.stderr

    # An older forge had other built-ins: its README lacked a line near the end, its error page had another last line.
    old_readme = readme[:-3] + readme[-2:]
    pretend_older_forge_base(repo, clean_path, "".join(old_readme))
    pretend_older_forge_base(repo, conflict_path, "".join(error_page[:-1]) + "<p>Old last line.</p>\n")

    for command in (["generate", "--out", repo], ["check", "--tree", repo]):
        warned = run_forge(*command, check=False)
        for path in (clean_path, conflict_path):
            assert f"warning: the built-in template {path} changed since overlay/{path} was written against it" in warned.stderr
            assert "(pretix-forge 0.0.9 → 0.1.0)" in warned.stderr

    no_git = run_forge("overlay", "update", "--tree", repo, check=False, env={**os.environ, "PATH": str(tmp_path / "empty")})
    assert no_git.returncode == 1 and "git is not installed" in no_git.stderr and "apt-get install git" in no_git.stderr

    update = run_forge("overlay", "update", "--tree", repo, check=False)
    assert update.returncode == 1
    assert f"merged:     {repo}/overlay/{clean_path}" in update.stdout
    assert f"CONFLICT:   {repo}/overlay/{conflict_path}" in update.stdout and conflict_path in update.stderr
    merged = (overlay / clean_path).read_text()
    assert merged == "Maintained by the Acme box office.\n" + "".join(readme), "the built-in's new line merged into the overlay"
    conflicted = (overlay / conflict_path).read_text()
    assert "<<<<<<< " in conflicted and "=======\n" in conflicted and ">>>>>>> " in conflicted
    assert "<p>Call the box office.</p>" in conflicted and error_page[-1] in conflicted

    blocked = run_forge("generate", "--out", repo, check=False)
    assert blocked.returncode == 1 and f"{conflict_path}:" in blocked.stderr and "unresolved merge conflict" in blocked.stderr

    (overlay / conflict_path).write_text("".join(error_page[:-1]) + "<p>Call the box office.</p>\n")
    settled = run_forge("generate", "--out", repo)
    assert "warning" not in settled.stderr
    assert (repo / clean_path).read_text().startswith("Maintained by the Acme box office.\n")
    assert run_forge("overlay", "update", "--tree", repo).stdout.count("up to date:") == 2


def test_a_config_outside_the_repository_is_named_again_and_warned_about(run_forge, tmp_path):
    config = tmp_path / "acme.toml"
    config.write_text(stock())
    repo = init_repo(tmp_path / "repo")
    first = run_forge("generate", "--config", config, "--out", repo)
    assert f"warning: the config {config} lies outside the repository {repo}; its workflows cannot find it" in first.stderr
    recorded = json.loads((repo / MANIFEST).read_text())["config"]
    assert recorded["from"] == "outside" and "path" not in recorded, "no path of this machine in a committed file"
    again = run_forge("generate", "--out", repo, check=False)
    assert again.returncode == 1 and "generated with a config outside it" in again.stderr and "pass --config FILE" in again.stderr
    assert run_forge("check", "--config", config, "--tree", repo).returncode == 0
