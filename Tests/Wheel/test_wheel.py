"""pretix-forge's own wheel, as `pip install pretix-forge` gets it: its manylinux tag, every
command from a fresh virtualenv with no Swift anywhere, the same output as the debug build that
the other suites test, and the same bytes when packaged again."""

import base64
import hashlib
import http.server
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
import venv
import zipfile
from pathlib import Path

import pytest
from forge_fixtures import forge, tool_wheel  # noqa: F401  (fixtures, found by name)

REPO = Path(__file__).resolve().parents[2]
# What make dist leaves in the release build's scratch folder: the binary the wheel ships, the
# linker's map of its link, and the licences scripts/licenses.py collected from that map.
RELEASE = REPO / ".build-release"
LICENSES = RELEASE / "licenses"
# PEP 600: the wheel must install on Ubuntu 22.04 LTS, whose glibc is 2.35.
NEWEST_GLIBC = (2, 35)
SECRET = "whsec_wheel_suite"
# What a manylinux wheel may load from the system: glibc's own libraries (PEP 600 allows GCC's
# runtimes too, but the binary links them statically) and the kernel's vDSO.
GLIBC_FAMILY = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
                "libresolv.so.2", "libutil.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


@pytest.fixture(scope="session")
def installed(tool_wheel, tmp_path_factory):
    """A fresh virtualenv with the wheel pip-installed, and the environment a user's shell has:
    the venv's bin/ and the system's on PATH, no Swift toolchain, no LD_LIBRARY_PATH."""
    root = tmp_path_factory.mktemp("user")
    environment = root / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    subprocess.run([environment / "bin" / "python", "-m", "pip", "install", "-q", "--no-index",
                    "--disable-pip-version-check", tool_wheel], check=True)
    path = os.pathsep.join([str(environment / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(root), "LANG": "C.UTF-8", "NODERAILS_WEBHOOK_SECRET": SECRET}
    assert shutil.which("swift", path=path) is None and shutil.which("swiftc", path=path) is None, \
        "a Swift toolchain is on the user's PATH; the test would not show the wheel needs none"
    binary = environment / "bin" / "pretix-forge"
    assert shutil.which("pretix-forge", path=path) == str(binary)
    return binary, env


def run(binary, *args, env=None, cwd=None, check=True):
    result = subprocess.run([str(binary), *map(str, args)], cwd=cwd, env=env, capture_output=True)
    if check and result.returncode != 0:
        pytest.fail(f"{binary} {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr.decode()}")
    return result


def files_under(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# -- the wheel file ------------------------------------------------------------------------------


def test_auditwheel_finds_the_manylinux_tag_the_file_name_claims(tool_wheel):
    claimed = re.fullmatch(r"pretix_forge-[0-9.]+-py3-none-(manylinux_\d+_\d+_x86_64)\.whl", tool_wheel.name)
    assert claimed, f"{tool_wheel.name} is not named like a manylinux wheel"
    report = subprocess.run([Path(sys.executable).parent / "auditwheel", "show", tool_wheel], capture_output=True, text=True)
    assert report.returncode == 0, report.stdout + report.stderr
    # auditwheel wraps its sentences to the terminal's width.
    found = re.search(r'consistent with the following platform tag: "([^"]+)"', " ".join(report.stdout.split()))
    assert found, report.stdout
    assert found.group(1) == claimed.group(1), report.stdout


def test_the_binary_is_a_script_in_a_wheel_holding_no_python(tool_wheel):
    with zipfile.ZipFile(tool_wheel) as archive:
        names = archive.namelist()
        version = tool_wheel.name.split("-")[1]
        script = archive.getinfo(f"pretix_forge-{version}.data/scripts/pretix-forge")
        assert script.external_attr >> 16 == 0o100755
        info = f"pretix_forge-{version}.dist-info"
        wheel_file = archive.read(f"{info}/WHEEL").decode()
        metadata = archive.read(f"{info}/METADATA").decode()
        record = archive.read(f"{info}/RECORD").decode().splitlines()
        assert not [name for name in names if name.endswith(".py")]
        assert "Root-Is-Purelib: false\n" in wheel_file and f"Tag: {tool_wheel.stem.split('-', 2)[2]}\n" in wheel_file
        assert metadata.startswith("Metadata-Version: 2.4\nName: pretix-forge\n")
        assert re.search(r"^License-Expression: Apache-2.0 AND \S", metadata, re.MULTILINE)
        declared = re.findall(r"^License-File: (.+)$", metadata, re.MULTILINE)
        shipped = sorted(name.removeprefix(f"{info}/licenses/") for name in names if name.startswith(f"{info}/licenses/"))
        assert declared[0] == "LICENSE" and sorted(declared) == shipped
        # Every file but RECORD itself is listed with its digest (pip checks them on install).
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("/RECORD"):
                continue
            data = archive.read(name)
            assert int(size) == len(data)
            assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert sorted(line.split(",")[0] for line in record) == sorted(names)


def test_the_manylinux_tag_is_at_most_glibc_2_35(tool_wheel):
    """auditwheel (above) refuses a symbol newer than the tag; this bounds the tag itself."""
    found = re.search(r"-manylinux_(\d+)_(\d+)_", tool_wheel.name)
    assert found, tool_wheel.name
    assert (int(found.group(1)), int(found.group(2))) <= NEWEST_GLIBC, \
        f"{tool_wheel.name} needs a glibc newer than {NEWEST_GLIBC}; see which symbols with objdump -T"


# -- the licences it owes ------------------------------------------------------------------------
# Read against the linker's map of the very link that made the wheel's binary, not against a list.


def wheel_licences(wheel):
    """The files under .dist-info/licenses/ by their path there, and the METADATA's License-Expression."""
    with zipfile.ZipFile(wheel) as archive:
        info = next(name.split("/")[0] for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        files = {name.removeprefix(f"{info}/licenses/"): archive.read(name) for name in archive.namelist()
                 if name.startswith(f"{info}/licenses/")}
        expression = re.search(r"^License-Expression: (.+)$", archive.read(f"{info}/METADATA").decode(), re.MULTILINE).group(1)
    return files, expression


def linked_inputs():
    """Every archive and object the linker's map names as an input of the release binary."""
    text = (RELEASE / "pretix-forge.map").read_text()
    return {match.group(1) for match in re.finditer(r"(?<![^\s(])(/[^\s()]+\.(?:a|o))(?:\([^)\s]*\))?(?=[\s)]|$)", text)}


def unlicensed(wheel):
    """What the binary links with no licence file for it in the wheel."""
    files, _ = wheel_licences(wheel)
    recorded = {}
    for line in (LICENSES / "linked.tsv").read_text().splitlines():
        path, component, folder = line.split("\t")
        recorded[path] = (component, folder)
    problems = [f"{path}: linked, but scripts/licenses.py did not trace it" for path in sorted(linked_inputs() - recorded.keys())]
    for path, (component, folder) in sorted(recorded.items()):
        if component.startswith("debian/"):
            # The trace, checked on its own: the package dpkg says the archive belongs to.
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True).stdout
            if owner.split(":", 1)[0].split(",")[0].strip() != component.removeprefix("debian/"):
                problems.append(f"{path}: traced to {component}, but dpkg -S says {owner.strip() or 'no package'}")
        if folder == "-":  # glibc's start files: the system the wheel requires, not shipped
            continue
        if folder == "LICENSE":
            if "LICENSE" not in files:
                problems.append(f"{path}: pretix-forge's own, and the wheel lacks its LICENSE")
        elif not any(name.startswith(f"{folder}/") for name in files):
            problems.append(f"{path}: from {component}, and the wheel has no licence file under licenses/{folder}/")
    return problems


def copyleft(wheel):
    """(L)GPL code linked without the GCC runtime library exception, by the METADATA's expression and
    by the licence texts shipped: the main licence (Files: *) of each Debian copyright file."""
    files, expression = wheel_licences(wheel)
    terms = [term.strip() for term in re.split(r" AND | OR |[()]", expression) if term.strip()]
    problems = [f"License-Expression: {term}" for term in terms if "GPL" in term and not term.endswith("WITH GCC-exception-3.1")]
    for name, data in sorted(files.items()):
        text = data.decode(errors="replace")
        if "GCC Runtime Library Exception" in text:
            continue
        for stanza in text.split("\n\n"):
            fields = re.split(r"\n(?=\S)", stanza)
            files_field = next((field for field in fields if field.startswith("Files:")), "")
            licence = next((field.split("\n")[0] for field in fields if field.startswith("License:")), "")
            if "*" in files_field.split() and licence:
                choices = re.split(r"\s+or\s+", licence.removeprefix("License:").strip(), flags=re.IGNORECASE)
                if all("GPL" in choice for choice in choices):
                    problems.append(f"{name}: {licence}")
    return problems


def test_the_wheel_ships_a_licence_for_everything_its_binary_links(tool_wheel):
    shipped = next(name for name in zipfile.ZipFile(tool_wheel).namelist() if name.endswith("/scripts/pretix-forge"))
    assert zipfile.ZipFile(tool_wheel).read(shipped) == (RELEASE / "pretix-forge").read_bytes(), \
        "the wheel's binary is not the one whose link map .build-release holds; run make dist"
    assert unlicensed(tool_wheel) == []


def test_no_gpl_or_lgpl_code_is_linked_without_the_gcc_runtime_exception(tool_wheel):
    assert copyleft(tool_wheel) == []


def test_the_licence_checks_catch_a_missing_licence_and_a_copyleft_one(tool_wheel, tmp_path):
    """The two checks above, shown failing on broken copies of the wheel."""
    _, expression = wheel_licences(tool_wheel)
    # A Debian copyright file as nettle-dev's reads, and its licence in the expression.
    nettle = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: someone\nLicense: LGPL-3+ or GPL-2+\n"
    broken = {"missing": tmp_path / "missing.whl", "copyleft": tmp_path / "copyleft.whl"}
    with zipfile.ZipFile(tool_wheel) as source, zipfile.ZipFile(broken["missing"], "w") as missing, \
            zipfile.ZipFile(broken["copyleft"], "w") as copyleft_copy:
        for item in source.infolist():
            if item.filename.endswith("/scripts/pretix-forge"):  # the checks read no binary; copying it is slow
                continue
            data = source.read(item)
            if "/licenses/libarchive/" not in item.filename:  # libarchive's copyright and COPYING
                missing.writestr(item.filename, data)
            if item.filename.endswith("/METADATA"):
                data = data.replace(f"License-Expression: {expression}".encode(),
                                    f"License-Expression: {expression} AND (LGPL-3.0-or-later OR GPL-2.0-or-later)".encode())
            copyleft_copy.writestr(item.filename, data)
        info = next(name.split("/")[0] for name in source.namelist() if name.endswith(".dist-info/METADATA"))
        copyleft_copy.writestr(f"{info}/licenses/debian/nettle-dev/copyright", nettle)
    assert [problem for problem in unlicensed(broken["missing"]) if "no licence file under licenses/libarchive/" in problem]
    assert copyleft(broken["copyleft"]) == ["License-Expression: LGPL-3.0-or-later", "License-Expression: GPL-2.0-or-later",
                                            "debian/nettle-dev/copyright: License: LGPL-3+ or GPL-2+"]


# -- installed like any Python tool ---------------------------------------------------------------


def test_the_installed_binary_loads_only_glibc(installed):
    binary, env = installed
    listing = subprocess.run(["ldd", binary], capture_output=True, text=True, env=env, check=True).stdout
    loaded = {line.split()[0].rsplit("/", 1)[-1] for line in listing.splitlines() if line.strip()}
    assert loaded and loaded <= GLIBC_FAMILY, f"loads more than glibc:\n{listing}"


def test_every_command_from_the_wheel_gives_what_the_debug_build_gives(installed, forge, tmp_path):
    binary, env = installed
    assert run(binary, "--version", env=env).stdout == run(forge, "--version").stdout

    results = {}
    for name, build in (("wheel", binary), ("debug", forge)):
        work = tmp_path / name
        work.mkdir()
        run(build, "init", "forge.toml", env=env if build == binary else None, cwd=work)
        run(build, "generate", "--config", "forge.toml", "--out", "tree", env=env if build == binary else None, cwd=work)
        run(build, "build", "--config", "forge.toml", "--out", "dist", env=env if build == binary else None, cwd=work)
        results[name] = files_under(work)
    assert results["wheel"].keys() == results["debug"].keys()
    # The record of dist/'s outputs is sealed with the key of the user who built (HOME differs here).
    record = "dist/.pretix-forge-outputs"
    different = [path for path in results["wheel"] if results["wheel"][path] != results["debug"][path] and path != record]
    assert different == [] and record in results["wheel"]

    work = tmp_path / "wheel"
    released = sorted(path.relative_to(work).as_posix() for path in (work / "dist").iterdir() if not path.name.startswith("."))
    for target in (["--tree", "tree"], ["--dist", *released]):
        assert run(binary, "check", "--config", "forge.toml", *target, env=env, cwd=work).returncode == 0
    # The installed check really compares: a hand-edited file is named.
    client = work / "tree" / "pretix_noderails" / "client.py"
    client.write_text(client.read_text() + "# patched\n")
    drift = run(binary, "check", "--config", "forge.toml", "--tree", "tree", env=env, cwd=work, check=False)
    assert drift.returncode == 1 and b"pretix_noderails/client.py" in drift.stdout + drift.stderr


def test_packaging_the_installed_binary_again_gives_the_same_bytes(installed, tool_wheel, tmp_path):
    binary, env = installed
    lines = []
    for out in ("first", "second"):
        printed = run(binary, "package-self", "--binary", binary, "--readme", REPO / "README.md", "--licenses", LICENSES,
                      "--out", tmp_path / out, env=env).stdout.decode()
        lines.append(printed)
    first, second = (tmp_path / out / tool_wheel.name for out in ("first", "second"))
    assert first.read_bytes() == second.read_bytes() == tool_wheel.read_bytes()
    assert lines[0] == lines[1] == f"{hashlib.sha256(tool_wheel.read_bytes()).hexdigest()}  {tool_wheel.name}\n"


def test_a_binary_that_loads_shared_libraries_is_refused(installed, forge, tmp_path):
    binary, env = installed
    refused = run(binary, "package-self", "--binary", forge, "--readme", REPO / "README.md", "--licenses", LICENSES,
                  "--out", tmp_path / "out", env=env, check=False)
    assert refused.returncode == 1
    assert b"libswiftCore.so" in refused.stderr and b"make dist" in refused.stderr
    assert not (tmp_path / "out").exists()


# -- webhook send, from the static binary: its own libcurl, HTTP and HTTPS only (scripts/build-libcurl.sh) --


def test_webhook_send_delivers_exactly_the_signed_bytes(installed):
    binary, env = installed
    received = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            received["headers"] = {k.lower(): v for k, v in self.headers.items()}
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"received": true}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        arguments = ["--type", "payment.refunded", "--refund-id", "rf_1", "--at", "1700000000.5"]
        signed = run(binary, "webhook", "sign", *arguments, env=env).stdout
        sent = run(binary, "webhook", "send", f"http://127.0.0.1:{server.server_port}/org/event/noderails/webhook/", *arguments,
                   env=env)
    finally:
        server.shutdown()
    head, body = signed.split(b"\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.decode().splitlines())
    assert received["body"] + b"\n" == body
    for name in ("x-noderails-signature", "x-noderails-timestamp", "content-type"):
        assert received["headers"][name] == headers[name]
    assert sent.stdout == b'HTTP 200\n{"received": true}\n'


def test_webhook_send_reports_a_refused_delivery(installed):
    binary, env = installed
    refused = run(binary, "webhook", "send", "http://127.0.0.1:9/", env=env, check=False)
    assert refused.returncode == 1 and b"delivery failed" in refused.stderr



@pytest.fixture
def https_receiver(tmp_path):
    """A webhook receiver on 127.0.0.1 with a self-signed test certificate."""
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate],
                   check=True, capture_output=True)
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            headers = {name.lower(): value for name, value in self.headers.items()}
            received.append((headers, self.rfile.read(int(self.headers["Content-Length"]))))
            answer = b'{"received": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            # A length, as pretix sends: a body ended only by closing the connection is
            # indistinguishable from a truncated one over TLS, and is refused.
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}/org/event/noderails/webhook/", certificate, received
    server.shutdown()


def test_webhook_send_delivers_over_https_trusting_the_test_certificate(installed, https_receiver):
    binary, env = installed
    url, certificate, received = https_receiver
    arguments = ["--type", "payment.captured", "--at", "1700000000"]
    sent = run(binary, "webhook", "send", url, "--ca-file", certificate, *arguments, env=env)
    assert sent.stdout.startswith(b"HTTP 200\n") and b'{"received": true}' in sent.stdout
    signed = run(binary, "webhook", "sign", *arguments, env=env).stdout
    headers, body = signed.split(b"\n\n", 1)
    assert len(received) == 1 and received[0][1] + b"\n" == body
    signature = next(line for line in headers.decode().splitlines() if line.lower().startswith("x-noderails-signature:"))
    assert received[0][0]["x-noderails-signature"] == signature.split(": ", 1)[1]


def test_webhook_send_refuses_a_certificate_it_was_not_told_to_trust(installed, https_receiver):
    binary, env = installed
    url, _, received = https_receiver
    started = time.monotonic()
    refused = run(binary, "webhook", "send", url, "--timeout", "60", env=env, check=False)
    assert refused.returncode == 1 and b"delivery failed: TLS failed" in refused.stderr
    assert received == []
    # Reported when the handshake fails, not retried until the timeout.
    assert time.monotonic() - started < 30
