"""Running `pretix-forge demo` in the background and checking that it leaves nothing behind.

Every process the demo starts is found by walking /proc from the pretix-forge process down;
each is remembered by pid *and* start time, so a pid the kernel hands out again later is not
mistaken for a survivor. Listening sockets are found through /proc/net/tcp and the processes'
file descriptors.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PIN = re.search(r'^pretix==(\S+)$', (REPO / 'Demo' / 'requirements.txt').read_text(), re.M).group(1)
# Where the demos of this suite keep pretix-forge's cache (compiled stylesheets); inside the
# repository's build/ folder, never the user's ~/.cache.
CACHE_HOME = REPO / 'build' / 'demo-tests' / 'cache'


def forge_binary():
    return Path(os.environ.get('PRETIX_FORGE', REPO / '.build' / 'debug' / 'pretix-forge')).resolve()


def pretix_python():
    """This suite runs in the pretix test environment; demos that do not test the cached
    environment use it through --python."""
    return sys.executable


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=1).close()
        return True
    except OSError:
        return False


# -- /proc -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    start: int
    command: str

    @property
    def key(self):
        return self.pid, self.start


def read_proc(pid):
    try:
        stat = Path('/proc/%d/stat' % pid).read_text()
        command = Path('/proc/%d/cmdline' % pid).read_bytes().replace(b'\0', b' ').decode('utf-8', 'replace')
    except OSError:
        return None
    # The command name (in parentheses) may contain spaces and parentheses itself.
    fields = stat[stat.rindex(')') + 2:].split()
    return Proc(pid=pid, ppid=int(fields[1]), pgid=int(fields[2]), state=fields[0], start=int(fields[19]),
                command=command.strip())


def all_processes():
    procs = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            proc = read_proc(int(name))
            if proc is not None:
                procs[proc.pid] = proc
    return procs


def descendants(root_pid):
    procs = all_processes()
    children = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc)
    found, todo = [], [root_pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def alive(proc):
    """Still running: the same pid with the same start time, and not a zombie."""
    now = read_proc(proc.pid)
    return now is not None and now.start == proc.start and now.state not in ('Z', 'X')


def listening_sockets(pids):
    """(address, port) of every TCP socket in LISTEN state held by one of ``pids``."""
    return {(address, port) for address, port, _pid in owned_listening_sockets(pids)}


def owned_listening_sockets(pids):
    """(address, port, pid) of every TCP socket in LISTEN state held by one of ``pids``."""
    owners = {}
    for pid in pids:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
                if target.startswith('socket:['):
                    owners[target[8:-1]] = pid
        except OSError:
            continue
    result = set()
    for table, family in (('/proc/net/tcp', 4), ('/proc/net/tcp6', 6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == '0A' and inode in owners:  # 0A = LISTEN
                address, port = local.split(':')
                result.add((_address(address, family), int(port, 16), owners[inode]))
    return result


def _address(hex_address, family):
    raw = bytes.fromhex(hex_address)
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = [raw[i:i + 4][::-1] for i in range(0, 16, 4)]
    return socket.inet_ntop(socket.AF_INET6, b''.join(words))


# -- the demo ---------------------------------------------------------------------------------


@dataclass
class Banner:
    shop_url: str
    backend_url: str
    admin_email: str
    admin_password: str
    sim_api: str
    sim_ui: str
    sim_control: str
    webhook_url: str
    webhook_secret: str

    @property
    def port(self):
        return int(re.match(r'http://127\.0\.0\.1:(\d+)/', self.shop_url).group(1))

    @property
    def ports(self):
        return [self.port] + [int(url.rsplit(':', 1)[1].split('/')[0]) for url in (self.sim_api, self.sim_ui)]


BANNER = {
    'shop_url': re.compile(r'^\s*Shop:\s+(http://127\.0\.0\.1:\d+/\S*)\s*$'),
    'backend': re.compile(r'^\s*Backend:\s+(http://127\.0\.0\.1:\d+/\S*)\s+\(log in as (\S+), password (\S+)\)\s*$'),
    'sim': re.compile(r'^\s*NodeRails sim:\s+API (http://\S+), checkout pages (http://\S+), '
                      r'control API (http://\S+)\s*$'),
    'webhook': re.compile(r'^\s*Webhook:\s+(http://\S+) \(signing secret (\S+)\)\s*$'),
}


class Demo:
    """`pretix-forge demo ARGS` in the background, its output collected line by line."""

    def __init__(self, args, workdir, cache_home=CACHE_HOME, forge=None, env=None, cwd=None, tmpdir=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tmpdir = Path(tmpdir) if tmpdir else self.workdir / 'tmp'
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ if env is None else env)
        environment.update(TMPDIR=str(self.tmpdir), XDG_CACHE_HOME=str(cache_home))
        self.command = [str(forge or forge_binary()), 'demo', *[str(a) for a in args]]
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, env=environment, cwd=str(cwd or self.workdir))
        self.stdout, self.stderr = [], []
        self.seen = {}  # (pid, start) -> Proc, every descendant ever observed
        self.listening = set()  # (address, port, command) of every listening socket observed
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines):
        for raw in iter(stream.readline, b''):
            lines.append(raw.decode('utf-8', 'replace').rstrip('\n'))

    @property
    def output(self):
        return 'stdout:\n%s\nstderr:\n%s' % ('\n'.join(self.stdout), '\n'.join(self.stderr))

    def remember_processes(self):
        """Record every process below pretix-forge now (call it at several moments)."""
        procs = descendants(self.process.pid)
        for proc in procs:
            # A zombie's command line reads empty: keep what the process was running before.
            if proc.command or proc.key not in self.seen:
                self.seen[proc.key] = proc
        commands = {p.pid: p.command for p in procs}
        for address, port, pid in owned_listening_sockets(list(commands)):
            self.listening.add((address, port, commands[pid]))
        return [p for p in self.seen.values() if alive(p)]

    def wait_for_banner(self, timeout=180):
        """Waits for the URL the demo prints; returns the Banner and the seconds it took."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self._banner()
            if found:
                self.remember_processes()
                return found, time.monotonic() - self.started
            if self.process.poll() is not None:
                for reader in self._readers:  # the last lines, up to the end of the pipes
                    reader.join(5)
                raise AssertionError('demo exited with %d before printing its URL\n%s'
                                     % (self.process.returncode, self.output))
            self.remember_processes()
            time.sleep(0.2)
        raise AssertionError('no URL from the demo within %d s\n%s' % (timeout, self.output))

    def _banner(self):
        values = {}
        for line in list(self.stdout):
            for name, pattern in BANNER.items():
                match = pattern.match(line)
                if match:
                    values[name] = match.groups()
        if len(values) < len(BANNER):
            return None
        return Banner(shop_url=values['shop_url'][0], backend_url=values['backend'][0],
                      admin_email=values['backend'][1], admin_password=values['backend'][2],
                      sim_api=values['sim'][0], sim_ui=values['sim'][1], sim_control=values['sim'][2],
                      webhook_url=values['webhook'][0], webhook_secret=values['webhook'][1])

    def send(self, sig):
        self.process.send_signal(sig)

    def wait(self, timeout=60):
        """Its exit status; meanwhile every process below it is recorded."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            self.remember_processes()
            if time.monotonic() > deadline:
                self.kill_everything()
                raise AssertionError('demo did not exit within %d s\n%s' % (timeout, self.output))
            time.sleep(0.1)
        for reader in self._readers:
            reader.join(5)
        return self.process.returncode

    def stop(self, sig=signal.SIGINT, timeout=60):
        self.remember_processes()
        self.send(sig)
        return self.wait(timeout)

    def survivors(self):
        return [p for p in self.seen.values() if alive(p)]

    def process_groups(self):
        """Process groups the demo's processes were in, other than the test's own."""
        return {p.pgid for p in self.seen.values()} - {os.getpgrp()}

    def members_of_groups(self):
        groups = self.process_groups()
        return [p for p in all_processes().values() if p.pgid in groups and p.state not in ('Z', 'X')]

    def workspaces(self):
        return sorted(str(p) for p in self.tmpdir.iterdir())

    def kill_everything(self):
        """Test clean-up after a failure: whatever the demo left is killed."""
        for proc in [read_proc(self.process.pid)] + list(self.seen.values()):
            if proc is not None and alive(proc):
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def assert_nothing_left(self, ports, timeout=20):
        """No process of the demo runs (by pid and by process group), no port answers, and the
        throwaway folder is gone: waits up to ``timeout`` seconds for that, then fails."""
        deadline = time.monotonic() + timeout
        while True:
            left = {
                'processes': ['%d %s' % (p.pid, p.command[:120]) for p in self.survivors()],
                'process groups': ['%d (group %d) %s' % (p.pid, p.pgid, p.command[:120])
                                   for p in self.members_of_groups()],
                'ports answering': [port for port in ports if port_open(port)],
                'throwaway data': self.workspaces(),
            }
            if not any(left.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError('left behind: %r\n%s' % (left, self.output))
            time.sleep(0.2)
