"""python -m forge_demo.guard PARENT_PID PROGRAM [ARG...]

Runs PROGRAM so that the kernel kills it when PARENT_PID dies, however it dies (SIGKILL
included): PR_SET_PDEATHSIG is armed here and survives the exec. The demo starts every
child through this instead of a preexec_fn, which is unsafe in a process that already runs
threads (the web server).
"""

import os
import signal
import sys

from .lifecycle import set_death_signal


def main(argv):
    parent = int(argv[1])
    set_death_signal(signal.SIGKILL)
    # The parent may have died before the signal was armed: then nobody would send it.
    if os.getppid() != parent:
        os._exit(1)
    os.execvp(argv[2], argv[2:])


if __name__ == '__main__':
    main(sys.argv)
