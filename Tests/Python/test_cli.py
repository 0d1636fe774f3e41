"""The CLI as a user meets it: help, errors without stack traces, nothing written on bad input."""

import collections
import os
import shutil
import stat
import subprocess

from conftest import DEFAULT_CONFIG


def test_help_everywhere(run_forge):
    for command in ([], ["init"], ["generate"], ["build"], ["check"]):
        result = run_forge(*command, "--help")
        assert "USAGE" in result.stdout


def test_rendering_commands_exit_cleanly_at_once(forge):
    """build, generate, check and demo start compiling the templates on another thread before their
    arguments are parsed; leaving at once (help, a usage error) must not exit under that thread,
    which crashed one run in thirty in OpenSSL's or the C++ runtime's clean-up."""
    outcomes = collections.Counter()
    for _ in range(150):
        for args, expected in ((["build", "--help"], 0), (["generate", "--no-such-flag"], 1)):
            result = subprocess.run([str(forge), *args], capture_output=True, timeout=60)
            outcomes[(args[0], result.returncode == expected)] += 1
    assert outcomes == {("build", True): 150, ("generate", True): 150}


def test_init_writes_the_embedded_default_and_refuses_to_overwrite(run_forge, tmp_path):
    target = tmp_path / "forge.toml"
    run_forge("init", target)
    assert target.read_text() == DEFAULT_CONFIG.read_text()
    again = run_forge("init", target, check=False)
    assert again.returncode == 1
    assert "--force" in again.stderr


def test_bad_config_is_reported_whole_and_writes_nothing(run_forge, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace('module = "pretix_noderails"', 'module = "class"')
                      .replace('currency = "USD"', 'currency = "usd"') + '\napi_key = "nr_live_sk_x"\n')
    out = tmp_path / "out"
    result = run_forge("generate", "--config", config, "--out", out, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr
    for key in ("package.module", "noderails.currency", "repository.api_key"):
        assert key in result.stderr
    assert f"{config}:" in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_usage_errors_exit_1(run_forge):
    result = run_forge("generate", "--no-such-flag", check=False)
    assert result.returncode == 1
    assert "--no-such-flag" in result.stderr


def test_missing_config_file_is_a_clear_error(run_forge, tmp_path):
    result = run_forge("generate", "--config", tmp_path / "nope.toml", check=False)
    assert result.returncode == 1
    assert "cannot read the config file" in result.stderr and "pretix-forge init" in result.stderr


def test_binary_is_self_contained(forge, tmp_path):
    lonely = tmp_path / "bin" / "pretix-forge"
    lonely.parent.mkdir()
    shutil.copy2(forge, lonely)
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run([str(lonely), "generate", "--out", "tree"], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (work / "tree" / "pretix_noderails" / "payment.py").is_file()
    assert (work / "tree" / "pretix_noderails" / "locale" / "de" / "LC_MESSAGES" / "django.mo").is_file()


def test_generate_defaults_to_build_folder(run_forge, tmp_path):
    result = run_forge("generate", cwd=tmp_path)
    assert (tmp_path / "build" / "pretix-noderails-1.0.0" / "pyproject.toml").is_file()
    assert "build/pretix-noderails-1.0.0" in result.stdout


def test_generate_never_replaces_a_folder_it_did_not_write(run_forge, tmp_path):
    precious = tmp_path / "project"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    result = run_forge("generate", "--out", precious, check=False)
    assert result.returncode == 1 and "holds files but no .pretix-forge.json" in result.stderr and "--adopt" in result.stderr
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]


BLOCKFEST = DEFAULT_CONFIG.parent / "blockfest"


def test_template_overlay_replaces_and_is_checked(run_forge, tmp_path):
    overlay = BLOCKFEST / "templates"
    tree = tmp_path / "tree"
    run_forge("generate", "--config", BLOCKFEST / "forge.toml", "--templates", overlay, "--out", tree)
    form = tree / "pretix_blockfest_pay" / "templates" / "pretix_blockfest_pay" / "checkout_payment_form.html"
    assert "blockfest-note" in form.read_text()
    assert (tree / "pretix_blockfest_pay" / "static" / "pretix_blockfest_pay" / "logo.svg").read_bytes() == (BLOCKFEST / "logo.svg").read_bytes()
    assert run_forge("check", "--config", BLOCKFEST / "forge.toml", "--templates", overlay, "--tree", tree).returncode == 0
    no_overlay = tmp_path / "empty-overlay"
    no_overlay.mkdir()
    without = run_forge("check", "--config", BLOCKFEST / "forge.toml", "--templates", no_overlay, "--tree", tree, check=False)
    assert without.returncode == 1 and "changed:  pretix_blockfest_pay/templates/pretix_blockfest_pay/checkout_payment_form.html" in without.stdout
    assert "the overlay changed since the tree was generated" in without.stdout


def test_overlay_file_a_letter_off_a_template_is_an_error(run_forge, tmp_path):
    overlay = tmp_path / "overlay"
    (overlay / "__module__").mkdir(parents=True)
    (overlay / "__module__" / "paymnet.py").write_text("x = 1\n")
    out = tmp_path / "out"
    result = run_forge("generate", "--templates", overlay, "--out", out, check=False)
    assert result.returncode == 1
    assert "paymnet.py: error: adds a new file whose name is a letter or two away from the built-in template __module__/payment.py" in result.stderr
    assert not out.exists()


def test_batch_build_reports_every_failing_variant_and_writes_nothing(run_forge, tmp_path):
    """Every variant is built, so one run names every mistake; one bad config leaves dist/ as it was."""
    configs = tmp_path / "configs"
    configs.mkdir()
    stock = DEFAULT_CONFIG.read_text()
    for index in range(3):
        (configs / f"v{index}.toml").write_text(stock.replace('name = "pretix-noderails"', f'name = "pretix-variant-{index}"')
                                                .replace('module = "pretix_noderails"', f'module = "pretix_variant_{index}"'))
    (configs / "v1.toml").write_text((configs / "v1.toml").read_text().replace('currency = "USD"', 'currency = "DOLLAR"'))
    (configs / "v2.toml").write_text((configs / "v2.toml").read_text().replace('version = "1.0.0"', 'version = "one"'))
    out = tmp_path / "dist"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    result = run_forge("build", "--config", configs, "--config", DEFAULT_CONFIG, "--out", out, check=False, env={**os.environ, "CI": "true"})
    assert result.returncode == 1
    assert "2 of 4 variants failed" in result.stderr and "v1.toml" in result.stderr and "noderails.currency" in result.stderr
    assert "v2.toml" in result.stderr and "package.version" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "dist"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # Plain progress lines in CI: one per state change, each naming its variant.
    assert "[2/4]" in result.stderr and "FAILED" in result.stderr
    (configs / "v1.toml").unlink()
    (configs / "v2.toml").unlink()
    result = run_forge("build", "--config", configs, "--config", DEFAULT_CONFIG, "--out", out, check=False, env={**os.environ, "CI": "true"})
    assert result.returncode == 0, result.stderr
    built = sorted(p.name for p in out.iterdir())
    assert built == sorted([".pretix-forge-outputs", "SHA256SUMS", "notes.txt", "pretix_noderails-1.0.0-py3-none-any.whl",
                            "pretix_noderails-1.0.0.tar.gz", "pretix_variant_0-1.0.0-py3-none-any.whl",
                            "pretix_variant_0-1.0.0.tar.gz"])
    assert len((out / "SHA256SUMS").read_text().splitlines()) == 4


def test_batch_refuses_two_variants_with_one_file_name(run_forge, tmp_path):
    result = run_forge("build", "--config", DEFAULT_CONFIG, "--config", DEFAULT_CONFIG, "--out", tmp_path / "dist", check=False)
    assert result.returncode == 1 and "package.name" in result.stderr
    # Nothing is published, and the archives staged as they were built are not left anywhere.
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_batch_whose_variants_all_fail_writes_nothing(run_forge, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text(DEFAULT_CONFIG.read_text().replace('currency = "USD"', 'currency = "DOLLAR"'))
    result = run_forge("build", "--config", broken, "--out", tmp_path / "new" / "dist", check=False)
    assert result.returncode == 1 and "noderails.currency" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.toml"]


def test_build_leaves_the_users_files_in_dist_as_they_were(forge, tmp_path):
    """dist/ is updated through a staged copy of itself: the user's files there stay the same files
    (inode, times, other hard links), a named pipe is never opened, and an earlier archive of its own
    is replaced, not written through to another link of it."""
    dist = tmp_path / "dist"
    (dist / "notes").mkdir(parents=True)
    mine = dist / "mine.txt"
    mine.write_text("mine\n")
    os.utime(mine, (978307200, 978307200))
    os.link(mine, tmp_path / "mine-elsewhere.txt")
    os.mkfifo(dist / "pipe")
    (dist / "notes" / "todo").write_text("release\n")
    os.symlink("mine.txt", dist / "link")
    before = os.stat(mine)
    # A timeout, not a hang, if the pipe were opened.
    result = subprocess.run([str(forge), "build", "--out", str(dist)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    earlier = dist / "pretix_noderails-1.0.0.tar.gz"
    os.link(earlier, tmp_path / "kept.tar.gz")
    kept = earlier.read_bytes()
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    result = subprocess.run([str(forge), "build", "--out", str(dist)], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    after = os.stat(mine)
    assert (after.st_ino, after.st_mtime, after.st_nlink) == (before.st_ino, 978307200, 2)
    assert stat.S_ISFIFO(os.lstat(dist / "pipe").st_mode) and os.readlink(dist / "link") == "mine.txt"
    assert (dist / "notes" / "todo").read_text() == "release\n"
    assert (tmp_path / "kept.tar.gz").read_bytes() == kept and earlier.read_bytes() != kept
    assert earlier.read_bytes()[:2] == b"\x1f\x8b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist", "kept.tar.gz", "mine-elsewhere.txt"]


def test_build_replaces_in_dist_only_what_it_wrote(forge, tmp_path):
    """A file named like an output that pretix-forge did not write (a hand-kept SHA256SUMS, an sdist
    setuptools built, a named pipe) stops the build with the file named, and dist/ stays as it was;
    so does a record of outputs this machine did not seal. Bytes identical to the output may be
    replaced: nothing is lost."""
    def build(dist, env=None):
        return subprocess.run([str(forge), "build", "--out", str(dist)], capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, **(env or {})))

    def snapshot(dist):
        return {p.name: (p.lstat().st_ino, p.read_bytes() if p.is_file() else None) for p in dist.iterdir()}

    cases = {
        "SHA256SUMS": lambda path: path.write_text("0123  my-own-release.tar.gz\n"),
        "pretix_noderails-1.0.0.tar.gz": lambda path: path.write_bytes(b"built by setuptools"),
        "pretix_noderails-1.0.0-py3-none-any.whl": os.mkfifo,
        ".pretix-forge-outputs": lambda path: path.write_text("pretix-forge outputs 1\nseal 00\n"),
    }
    for name, make in cases.items():
        dist = tmp_path / ("dist-" + name.strip("."))
        dist.mkdir()
        make(dist / name)
        before = snapshot(dist)
        result = build(dist)
        assert result.returncode == 1 and "%s/%s" % (dist, name) in result.stderr, (name, result.stderr)
        assert "--out" in result.stderr and snapshot(dist) == before, name
        assert sorted(p.name for p in tmp_path.iterdir() if ".forge-staging" in p.name) == []

    ours = tmp_path / "ours"
    assert build(ours).returncode == 0
    record = (ours / ".pretix-forge-outputs").read_text()
    assert "pretix_noderails-1.0.0.tar.gz" in record and "SHA256SUMS" in record
    # The same bytes, written by hand: identical to what the build writes, so replacing them loses nothing.
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in ours.iterdir():
        if not path.name.startswith("."):
            shutil.copy(path, copy / path.name)
    assert build(copy).returncode == 0
    # Changed after pretix-forge wrote it: the user's now.
    with open(ours / "SHA256SUMS", "a") as sums:
        sums.write("abcd  notes.txt\n")
    result = build(ours, {"SOURCE_DATE_EPOCH": "1700000000"})
    assert result.returncode == 1 and "%s/SHA256SUMS" % ours in result.stderr, result.stderr


def test_rebuild_of_the_same_inputs_leaves_dist_as_it_was(forge, tmp_path):
    """Builds are reproducible, so a rebuild of unchanged inputs gives the bytes dist/ holds: the folder
    and its files stay the same inodes with the same times (a shell inside dist/ keeps a folder that
    exists). A rebuild that changes an archive replaces it, and only what changed."""
    dist = tmp_path / "dist"

    def build(env=None):
        result = subprocess.run([str(forge), "build", "--out", str(dist)], capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, **(env or {})))
        assert result.returncode == 0, result.stderr
        return {p.name: (p.lstat().st_ino, p.lstat().st_mtime_ns) for p in [dist, *dist.iterdir()]}

    first = build()
    assert build() == first
    changed = build({"SOURCE_DATE_EPOCH": "1700000000"})
    archives = {"pretix_noderails-1.0.0.tar.gz", "pretix_noderails-1.0.0-py3-none-any.whl", "SHA256SUMS", ".pretix-forge-outputs"}
    assert set(changed) == set(first) == archives | {"dist"}
    assert all(changed[name] != first[name] for name in archives)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


def test_overlay_never_writes_into_git_or_the_tools_own_files(run_forge, tmp_path):
    """An overlay is often a repository of its own: its .git is skipped. A file that would land in a
    tree's .git (a hook runs on the next commit) or on pretix-forge's bookkeeping is refused."""
    overlay = tmp_path / "overlay"
    (overlay / ".git" / "hooks").mkdir(parents=True)
    (overlay / ".git" / "hooks" / "pre-commit").write_text("echo ran\n")
    (overlay / "docs" / ".git").mkdir(parents=True)
    (overlay / "docs" / ".git" / "config").write_text("[core]\n")
    (overlay / "CHANGELOG.md").write_text("# Changes\n")
    out = tmp_path / "out"
    run_forge("generate", "--templates", overlay, "--out", out)
    assert (out / "CHANGELOG.md").is_file() and not (out / ".git").exists() and not (out / "docs").exists()
    for name in (".GIT/hooks/pre-commit", ".pretix-forge.journal", ".Pretix-Forge.json", ".pretix-forge.staging/x"):
        hostile = tmp_path / ("overlay-" + str(abs(hash(name))))
        shutil.copytree(overlay, hostile)
        (hostile / name).parent.mkdir(parents=True, exist_ok=True)
        (hostile / name).write_text("x\n")
        result = run_forge("generate", "--templates", hostile, "--out", tmp_path / "refused", check=False)
        assert result.returncode == 1 and "belongs to git or to pretix-forge" in result.stderr, (name, result.stderr)
        assert not (tmp_path / "refused").exists()


def test_build_tree_of_a_folder_without_manifest_is_an_error(run_forge, tmp_path):
    """Nothing records the config of such a folder: building the stock plugin instead would pass for it."""
    (tmp_path / "plain").mkdir()
    result = run_forge("build", "--tree", tmp_path / "plain", "--out", tmp_path / "dist", check=False)
    assert result.returncode == 1 and "no .pretix-forge.json" in result.stderr and "--config FILE" in result.stderr
    assert not (tmp_path / "dist").exists()


def test_init_keeps_a_dangling_link_and_names_a_folder(run_forge, tmp_path):
    os.symlink("nowhere.toml", tmp_path / "link.toml")
    result = run_forge("init", tmp_path / "link.toml", check=False)
    assert result.returncode == 1 and "exists already" in result.stderr
    assert os.readlink(tmp_path / "link.toml") == "nowhere.toml"
    result = run_forge("init", tmp_path, "--force", check=False)
    assert result.returncode == 1 and "is a folder" in result.stderr and "fix:" in result.stderr


def test_errors_in_overlay_files_name_the_overlay_file(run_forge, tmp_path):
    overlay = tmp_path / "overlay"
    (overlay / "__module__" / "locale" / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (overlay / "extra.py").write_text('NAME = "<% package.nme %>"\n')
    result = run_forge("generate", "--templates", overlay, "--out", tmp_path / "out", check=False)
    assert result.returncode == 1 and f"{overlay}/extra.py:1: error: unknown variable 'package.nme'" in result.stderr, result.stderr
    (overlay / "extra.py").unlink()
    (overlay / "__module__" / "locale" / "fr" / "LC_MESSAGES" / "django.po").write_text('msgid "a"\nmsgstr "b\n')
    result = run_forge("generate", "--templates", overlay, "--out", tmp_path / "out", check=False)
    assert result.returncode == 1, result.stderr
    assert f"{overlay}/__module__/locale/fr/LC_MESSAGES/django.po:2: error: catalogue does not parse" in result.stderr
    assert "fix: " in result.stderr and not (tmp_path / "out").exists()


def test_an_output_inside_a_file_and_an_unmanaged_pattern_over_a_generated_file_say_what_is_wrong(run_forge, tmp_path):
    (tmp_path / "notes").write_text("mine\n")
    for command in ("build", "generate"):
        result = run_forge(command, "--out", tmp_path / "notes" / "dist", check=False)
        assert result.returncode == 1 and f"{tmp_path / 'notes'} is a file" in result.stderr, result.stderr
    assert (tmp_path / "notes").read_text() == "mine\n"
    config = tmp_path / "forge.toml"
    config.write_text(DEFAULT_CONFIG.read_text().replace("unmanaged = []", 'unmanaged = ["README.md"]'))
    result = run_forge("generate", "--config", config, "--out", tmp_path / "tree", check=False)
    assert result.returncode == 1 and "the pattern 'README.md' matches README.md" in result.stderr, result.stderr
    assert "overlay" not in result.stderr   # there is none to blame
