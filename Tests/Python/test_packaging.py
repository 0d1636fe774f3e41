"""The sdist and wheel pretix-forge writes, checked by the tools a release pipeline uses."""

import gzip
import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from pathlib import Path

import pytest

import strict_zip
from conftest import DEFAULT_CONFIG

SDIST = "pretix_noderails-1.0.0.tar.gz"
WHEEL = "pretix_noderails-1.0.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def dist(tmp_path_factory, forge):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(forge), "build", "--out", str(out)], check=True, capture_output=True)
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else None


def fresh_venv(path):
    venv.EnvBuilder(with_pip=True).create(path)
    return path / "bin" / "python"


INSPECT = """
import importlib.metadata as md, importlib.util, json, pathlib
dist = md.distribution('pretix-noderails')
package = pathlib.Path(importlib.util.find_spec('pretix_noderails').origin).parent
print(json.dumps({
    'name': dist.metadata['Name'], 'version': dist.version,
    'entry_points': [(e.group, e.name, e.value) for e in dist.entry_points],
    'files': sorted(str(p.relative_to(package)) for p in package.rglob('*') if p.is_file() and '__pycache__' not in p.parts),
}))
"""


UV = Path(sys.executable).with_name("uv")


def install_command(installer, python, artifact):
    if installer == "uv":
        return [str(UV), "pip", "install", "--python", str(python), str(artifact)]
    return [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(artifact)]


@pytest.mark.parametrize("artifact", [SDIST, WHEEL])
@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_installer_installs_into_a_fresh_venv(dist, tmp_path, installer, artifact):
    import json

    python = fresh_venv(tmp_path / "venv")
    install = subprocess.run(install_command(installer, python, dist / artifact), capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    report = json.loads(subprocess.run([str(python), "-c", INSPECT], check=True, capture_output=True, text=True, cwd=tmp_path).stdout)
    assert report["name"] == "pretix-noderails"
    assert report["version"] == "1.0.0"
    assert ["pretix.plugin", "pretix_noderails", "pretix_noderails:PretixPluginMeta"] in report["entry_points"]
    files = report["files"]
    assert "templates/pretix_noderails/checkout_payment_confirm.html" in files
    assert any(f.startswith("static/pretix_noderails/") and f.endswith(".js") for f in files)
    assert "locale/de/LC_MESSAGES/django.mo" in files and "locale/de_Informal/LC_MESSAGES/django.mo" in files
    assert "migrations/0001_initial.py" in files


def test_wheel_reads_alike_walking_local_headers_or_the_central_directory(dist):
    assert strict_zip.problems((dist / WHEEL).read_bytes()) == []


def test_padded_wheel_is_refused_by_the_strict_reading_uv_and_check_dist(dist, run_forge, tmp_path):
    # The shape libarchive's default block padding gave: the zip followed by zeros to 10 KiB.
    padded = tmp_path / WHEEL
    padded.write_bytes((dist / WHEEL).read_bytes() + bytes(6006))
    assert strict_zip.problems(padded.read_bytes()) == ["6006 bytes after the end record"]
    uv = subprocess.run(install_command("uv", fresh_venv(tmp_path / "venv"), padded), capture_output=True, text=True)
    # uv wraps its message to the terminal width.
    assert uv.returncode != 0 and "trailing contents after the end-of-central-directory record" in " ".join(uv.stderr.split()), uv.stderr
    check = run_forge("check", "--dist", padded, check=False)
    assert check.returncode == 1
    assert "invalid:  6006 bytes follow the end-of-central-directory record" in check.stdout


def test_wheel_with_data_descriptors_is_refused_by_the_strict_reading_and_check_dist(dist, run_forge, tmp_path):
    # zipfile writing to a stream it cannot seek puts CRC-32 and sizes after each member's
    # data, as libarchive does: the local headers then carry zeros.
    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.chunks = []

        def writable(self):
            return True

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

    stream = Unseekable()
    with zipfile.ZipFile(dist / WHEEL) as source, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    streamed = tmp_path / WHEEL
    streamed.write_bytes(b"".join(stream.chunks))
    assert "pretix_noderails/views.py: data descriptor" in strict_zip.problems(streamed.read_bytes())
    check = run_forge("check", "--dist", streamed, check=False)
    assert check.returncode == 1
    assert "invalid:  pretix_noderails/views.py: uses a data descriptor" in check.stdout


def test_sdist_is_a_gzipped_ustar_or_pax_tar_that_the_data_filter_accepts(dist, tmp_path):
    raw = gzip.decompress((dist / SDIST).read_bytes())
    assert raw[257:263] == b"ustar\x00", "not a POSIX (ustar/pax) tar"
    with tarfile.open(dist / SDIST, "r:gz") as archive:
        members = archive.getmembers()
        for member in members:
            tarfile.data_filter(member, str(tmp_path))
        archive.extractall(tmp_path, filter="data")
    assert (tmp_path / "pretix_noderails-1.0.0" / "PKG-INFO").is_file()
    assert sum(m.isfile() for m in members) == sum(1 for p in tmp_path.rglob("*") if p.is_file())


def test_twine_check_strict(dist):
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(dist / SDIST), str(dist / WHEEL)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_check_wheel_contents(dist):
    # W004 "module is not located at importable path" fires for the pretix-mandated
    # locale/de_Informal folder name (not a Python identifier, never imported). Nothing else
    # is ignored.
    result = subprocess.run([sys.executable, "-m", "check_wheel_contents", "--ignore", "W004", str(dist / WHEEL)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_setuptools_wheel_from_our_sdist_has_our_file_list(dist, tmp_path):
    with tarfile.open(dist / SDIST, "r:gz") as archive:
        archive.extractall(tmp_path, filter="data")
    source = tmp_path / "pretix_noderails-1.0.0"
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "theirs"), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    theirs = zipfile.ZipFile(next((tmp_path / "theirs").glob("*.whl"))).namelist()
    ours = zipfile.ZipFile(dist / WHEEL).namelist()
    assert sorted(ours) == sorted(theirs)


def test_sdist_layout_and_wheel_record(dist):
    with tarfile.open(dist / SDIST, "r:gz") as archive:
        names = archive.getnames()
        members = archive.getmembers()
    assert all(n == "pretix_noderails-1.0.0" or n.startswith("pretix_noderails-1.0.0/") for n in names)
    assert {"pretix_noderails-1.0.0/PKG-INFO", "pretix_noderails-1.0.0/pyproject.toml", "pretix_noderails-1.0.0/LICENSE"} <= set(names)
    assert any(n.endswith("/tests/test_webhook.py") for n in names)
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mode in (0o644, 0o755)
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        names = wheel.namelist()
        assert names[-1] == "pretix_noderails-1.0.0.dist-info/RECORD"
        assert all(info.date_time >= (1980, 1, 1, 0, 0, 0) for info in wheel.infolist())


def test_sha256sums_match(dist):
    for line in (dist / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest


def test_two_builds_are_byte_identical(run_forge, tmp_path):
    run_forge("build", "--out", tmp_path / "a")
    run_forge("build", "--out", tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_source_date_epoch_changes_only_timestamps(run_forge, tmp_path):
    run_forge("build", "--out", tmp_path / "a", env={**os.environ, "SOURCE_DATE_EPOCH": "1600000000"})
    run_forge("build", "--out", tmp_path / "b", env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
    for name in (SDIST, WHEEL):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()
    with tarfile.open(tmp_path / "a" / SDIST) as a, tarfile.open(tmp_path / "b" / SDIST) as b:
        assert [(m.name, m.mode, m.size) for m in a.getmembers()] == [(m.name, m.mode, m.size) for m in b.getmembers()]
        assert {m.mtime for m in a.getmembers()} == {1600000000} and {m.mtime for m in b.getmembers()} == {1700000000}
        assert all(a.extractfile(m).read() == b.extractfile(m.name).read() for m in a.getmembers() if m.isfile())
    with zipfile.ZipFile(tmp_path / "a" / WHEEL) as a, zipfile.ZipFile(tmp_path / "b" / WHEEL) as b:
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


def test_check_accepts_an_untouched_tree_and_names_every_drift(run_forge, tmp_path):
    tree = tmp_path / "tree"
    run_forge("generate", "--out", tree)
    clean = run_forge("check", "--tree", tree)
    assert "up to date" in clean.stdout
    (tree / "README.md").write_text((tree / "README.md").read_text() + "local edit\n")
    (tree / "pretix_noderails" / "extra.py").write_text("x = 1\n")
    (tree / "MANIFEST.in").unlink()
    drift = run_forge("check", "--tree", tree, check=False)
    assert drift.returncode == 1
    assert "changed:  README.md" in drift.stdout and "-local edit" in drift.stdout
    assert "added:    pretix_noderails/extra.py" in drift.stdout
    assert "removed:  MANIFEST.in" in drift.stdout
    assert f"to repair: pretix-forge generate --out {tree}" in drift.stdout


def test_check_accepts_our_dist_files_and_rejects_altered_ones(run_forge, dist, tmp_path):
    files = [dist / SDIST, dist / WHEEL, dist / "SHA256SUMS"]
    assert run_forge("check", "--dist", *files).returncode == 0
    altered = tmp_path / WHEEL
    with zipfile.ZipFile(dist / WHEEL) as source, zipfile.ZipFile(altered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data + b"# tampered\n" if info.filename.endswith("views.py") else data)
    drift = run_forge("check", "--dist", altered, check=False)
    assert drift.returncode == 1
    assert "changed:  pretix_noderails/views.py" in drift.stdout
    assert "pretix-forge build --out" in drift.stdout


def test_failing_build_leaves_previous_dist_untouched(run_forge, tmp_path):
    out = tmp_path / "dist"
    run_forge("build", "--out", out)
    before = snapshot(out)
    bad = tmp_path / "bad.toml"
    bad.write_text(DEFAULT_CONFIG.read_text().replace('version = "1.0.0"', 'version = "2.0.0"').replace('currency = "USD"', 'currency = "???"'))
    result = run_forge("build", "--config", bad, "--out", out, check=False)
    assert result.returncode == 1 and "noderails.currency" in result.stderr
    assert snapshot(out) == before
    epoch = run_forge("build", "--out", out, env={**os.environ, "SOURCE_DATE_EPOCH": "soon"}, check=False)
    assert epoch.returncode == 1 and "SOURCE_DATE_EPOCH" in epoch.stderr
    assert snapshot(out) == before


def test_interrupted_build_leaves_old_or_complete_new_dist(forge, run_forge, tmp_path):
    out = tmp_path / "dist"
    old_build = {**os.environ, "SOURCE_DATE_EPOCH": "1600000000"}
    run_forge("build", "--out", out, env=old_build)
    old = snapshot(out)
    run_forge("build", "--out", tmp_path / "expected-new", env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
    new = snapshot(tmp_path / "expected-new")

    def staging():
        return sorted(p.name for p in tmp_path.glob(".dist.forge-staging-*"))

    rng = random.Random(4231)
    outcomes, abandoned = set(), []
    for attempt in range(12):
        process = subprocess.Popen([str(forge), "build", "--out", str(out)], env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt % 2:
            time.sleep(rng.uniform(0.0, 0.8))
        else:
            # Every other kill waits for the staging folder, so kills land mid-build however fast the machine.
            deadline = time.monotonic() + 30
            while not staging() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.02))
        process.send_signal(signal.SIGKILL)
        process.wait()
        state = snapshot(out)
        assert state in (old, new), "a killed build left a mixed or partial dist/"
        outcomes.add("old" if state == old else "new")
        left = staging()
        if left or state == new:
            # The next build removes what the killed one abandoned beside dist/.
            run_forge("build", "--out", out, env=old_build)
            assert staging() == [] and snapshot(out) == old, left
            abandoned += left
    # Kills must have landed mid-build, leaving a staging folder, or the test proved nothing.
    assert "old" in outcomes and abandoned, "no kill landed mid-build (outcomes %s)" % sorted(outcomes)
