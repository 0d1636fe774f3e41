"""Start and stop: signals, children that cannot outlive the demo, errors a user can act on."""

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DemoError(Exception):
    """A failure explained in words; printed without a traceback."""


class Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind to the clean-up, wherever the demo was.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it."""


def set_death_signal(sig):
    """The kernel sends ``sig`` to this process when its parent dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_PDEATHSIG) failed')


def stop_on_signals():
    def stop(signum, frame):
        raise Stopped(signal.Signals(signum).name)
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)


def ignore_further_signals():
    """The clean-up runs once, to the end; pretix-forge sends SIGKILL if it ever hangs."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def guarded(argv):
    """``argv`` wrapped so that the program is killed when this process dies (see guard.py).

    Call from the main thread: the kernel ties the death signal to the thread that forked."""
    return [sys.executable, '-m', 'forge_demo.guard', str(os.getpid()), *[str(a) for a in argv]]


def run_logged(argv, log_path, what, env=None, timeout=600):
    """Run a guarded child with its output in ``log_path``; DemoError with the log's tail on failure."""
    with open(log_path, 'ab') as log:
        result = subprocess.run(guarded(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, timeout=timeout)
    if result.returncode != 0:
        raise DemoError('%s failed (exit %d):\n%s' % (what, result.returncode, tail(log_path)))


def stop_process(process, timeout=5):
    """SIGTERM, then SIGKILL after ``timeout`` seconds; waits until it is gone."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path, size=3000):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return '(no log at %s)' % path
