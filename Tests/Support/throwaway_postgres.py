"""A throwaway PostgreSQL cluster for tests: own data directory, own port, loopback only.

    with ThrowawayPostgres() as pg:
        os.environ.update(pg.pretix_environment("pretix_test"))

initdb and the server run as the `postgres` system user when we are root (PostgreSQL refuses
to run as root); the cluster and its data are removed on exit, whatever happened.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def _bin_dir():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's postgresql package (make test does)")
    return candidates[-1]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayPostgres:
    def __init__(self):
        self.bin = _bin_dir()
        self.port = _free_port()
        self.root = tempfile.mkdtemp(prefix="forge-pg-")
        self.data = os.path.join(self.root, "data")
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *args, **kwargs):
        command = [os.path.join(self.bin, args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)

    def __enter__(self):
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        # Loopback only, a socket dir of our own, and durability traded for speed: the data is thrown away.
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "server.log"), "-o", options, "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def create_database(self, name):
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)

    def pretix_environment(self, name):
        """pretix reads PRETIX_<SECTION>_<KEY> over its config file."""
        return {
            "PRETIX_DATABASE_BACKEND": "postgresql",
            "PRETIX_DATABASE_NAME": name,
            "PRETIX_DATABASE_USER": self.user,
            "PRETIX_DATABASE_PASSWORD": "",
            "PRETIX_DATABASE_HOST": "127.0.0.1",
            "PRETIX_DATABASE_PORT": str(self.port),
        }
