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
        assert "License-Expression: Apache-2.0\nLicense-File: LICENSE\n" in metadata
        assert f"{info}/licenses/LICENSE" in names
        # Every file but RECORD itself is listed with its digest (pip checks them on install).
        for line in record:
            name, digest, size = line.rsplit(",", 2)
            if name.endswith("/RECORD"):
                continue
            data = archive.read(name)
            assert int(size) == len(data)
            assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert sorted(line.split(",")[0] for line in record) == sorted(names)


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
    different = [path for path in results["wheel"] if results["wheel"][path] != results["debug"][path]]
    assert different == []

    work = tmp_path / "wheel"
    released = sorted(path.relative_to(work).as_posix() for path in (work / "dist").iterdir())
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
        printed = run(binary, "package-self", "--binary", binary, "--readme", REPO / "README.md", "--out", tmp_path / out,
                      env=env).stdout.decode()
        lines.append(printed)
    first, second = (tmp_path / out / tool_wheel.name for out in ("first", "second"))
    assert first.read_bytes() == second.read_bytes() == tool_wheel.read_bytes()
    assert lines[0] == lines[1] == f"{hashlib.sha256(tool_wheel.read_bytes()).hexdigest()}  {tool_wheel.name}\n"


def test_a_binary_that_loads_shared_libraries_is_refused(installed, forge, tmp_path):
    binary, env = installed
    refused = run(binary, "package-self", "--binary", forge, "--readme", REPO / "README.md", "--out", tmp_path / "out",
                  env=env, check=False)
    assert refused.returncode == 1
    assert b"libswiftCore.so" in refused.stderr and b"make dist" in refused.stderr
    assert not (tmp_path / "out").exists()


# -- webhook send, from the static binary: the one build with the WebhookSend trait (make dist) -----


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
