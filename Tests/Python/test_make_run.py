"""`make run`, the first command of the README: it builds the tool and leaves the stock plugin
tree and the release files where it says."""

import os
import shutil
import subprocess

from conftest import REPO


RELEASE_FILES = ("pretix_noderails-1.0.0.tar.gz", "pretix_noderails-1.0.0-py3-none-any.whl", "SHA256SUMS")


def test_make_run_writes_tree_and_dist_and_says_where():
    # What an earlier run left must not stand in for this one's output. Only these: build/ and
    # dist/ also hold other suites' reports and the tool's own wheel from `make dist`.
    tree = REPO / "build" / "pretix-noderails-1.0.0"
    shutil.rmtree(tree, ignore_errors=True)
    for name in RELEASE_FILES:
        (REPO / "dist" / name).unlink(missing_ok=True)
    result = subprocess.run(["make", "--no-print-directory", "run"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "build/pretix-noderails-1.0.0" in result.stdout and "dist/" in result.stdout
    assert (tree / "pretix_noderails" / "payment.py").is_file()
    for name in RELEASE_FILES:
        assert (REPO / "dist" / name).is_file(), name


def fake_debian(folder):
    """A PATH folder where dpkg-query reports every package missing and apt-get records its
    arguments instead of installing, so a test sees what a bare machine would get."""
    log = folder / "apt-get.log"
    (folder / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (folder / "apt-get").write_text('#!/bin/sh\necho "$*" >> "%s"\n' % log)
    for name in ("dpkg-query", "apt-get"):
        (folder / name).chmod(0o755)
    return log


def test_make_run_installs_only_what_building_the_tool_needs(tmp_path):
    log = fake_debian(tmp_path)
    env = dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ["PATH"]))
    result = subprocess.run(["make", "--no-print-directory", "run"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    installs = [line.split() for line in log.read_text().splitlines() if " install " in " %s " % line]
    assert len(installs) == 1, log.read_text()
    packages = [word for word in installs[0] if not word.startswith("-") and word != "install"]
    assert sorted(packages) == ["git", "libarchive-dev", "libcurl4-openssl-dev", "libdeflate-dev", "libexpat1-dev", "libssl-dev",
                               "pkg-config"]
    assert "virtualenv" not in result.stdout + result.stderr


def packages_installed_for(group, folder):
    """What `install-deps.sh system GROUP` asks apt for on a bare machine."""
    log = fake_debian(folder)
    env = dict(os.environ, PATH="%s:%s" % (folder, os.environ["PATH"]))
    result = subprocess.run(["scripts/install-deps.sh", "system", group], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return log.read_text().split()


def test_make_test_installs_the_suites_needs_on_top(tmp_path):
    packages = packages_installed_for("test", tmp_path)
    for package in ("libarchive-dev", "libxml2-dev", "postgresql", "chromium", "chromium-driver", "python3-venv"):
        assert package in packages


def test_make_dist_installs_the_static_archives_and_not_the_suites_needs(tmp_path):
    packages = packages_installed_for("dist", tmp_path)
    # libarchive's headers, the archives of libxml2 (FoundationXML) and its dependencies, and what
    # builds libarchive from Debian's source (scripts/build-libarchive.sh).
    for package in ("libarchive-dev", "libxml2-dev", "libicu-dev", "liblzma-dev", "zlib1g-dev", "dpkg-dev", "autoconf",
                    "automake", "libtool"):
        assert package in packages
    # The archives only Debian's full libarchive.a needed: LGPL (nettle, libacl) or unused formats.
    for package in ("nettle-dev", "libacl1-dev", "libzstd-dev", "liblz4-dev", "libbz2-dev"):
        assert package not in packages
    assert "postgresql" not in packages and "chromium" not in packages
