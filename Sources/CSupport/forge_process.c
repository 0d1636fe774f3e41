#define _GNU_SOURCE
#include "forge_process.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/// pipe2 where there is one (Linux); elsewhere pipe and fcntl, which is fine before any fork.
static int make_pipe(int fds[2], int flags) {
#ifdef __linux__
    return pipe2(fds, flags);
#else
    if (pipe(fds) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if ((flags & O_CLOEXEC) && fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            return -1;
        }
        if ((flags & O_NONBLOCK) && fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0) {
            return -1;
        }
    }
    return 0;
#endif
}

static void close_from(int lowest) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned int)lowest, ~0U, 0) == 0) {
        return;
    }
#endif
    long limit = sysconf(_SC_OPEN_MAX);
    for (int fd = lowest; fd < (limit > 0 && limit < 65536 ? limit : 65536); fd++) {
        close(fd);
    }
}

/// The child's part: only async-signal-safe calls until execve (the parent may have threads).
static void become(const char *path, char *const argv[], char *const envp[], const char *directory,
                   int stdout_fd, int stderr_fd, int new_group, int death_signal, pid_t parent, int report_fd) {
    if (new_group && setpgid(0, 0) != 0) {
        goto failed;
    }
#ifdef __linux__
    if (death_signal) {
        if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) {
            goto failed;
        }
        // The parent may have died before the signal was armed: then nobody would send it.
        if (getppid() != parent) {
            _exit(127);
        }
    }
#else
    (void)death_signal;  // no parent-death signal outside Linux: the caller's clean-up must do
    (void)parent;
#endif
    struct sigaction defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        sigaction(sig, &defaults, NULL);  // fails harmlessly for SIGKILL, SIGSTOP and reserved ones
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (directory && chdir(directory) != 0) {
        goto failed;
    }
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0) {
        goto failed;
    }
    if ((stdout_fd >= 0 && dup2(stdout_fd, 1) < 0) || (stderr_fd >= 0 && dup2(stderr_fd, 2) < 0)) {
        goto failed;
    }
    // The report pipe is close-on-exec, so closing it here would hide a failed exec: keep it.
    if (report_fd > 3) {
        dup2(report_fd, 3);
        report_fd = 3;
    }
    close_from(report_fd == 3 ? 4 : 3);
    fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    execve(path, argv, envp);
failed:;
    int error = errno;
    ssize_t ignored = write(report_fd, &error, sizeof error);
    (void)ignored;
    _exit(127);
}

pid_t forge_spawn(const char *path, char *const argv[], char *const envp[], const char *directory,
                  int stdout_fd, int stderr_fd, int new_group, int death_signal) {
    int report[2];
    if (make_pipe(report, O_CLOEXEC) != 0) {
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(report[0]);
        become(path, argv, envp, directory, stdout_fd, stderr_fd, new_group, death_signal, parent, report[1]);
    }
    int saved = errno;
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        errno = saved;
        return -1;
    }
    if (new_group) {
        setpgid(pid, pid);  // also from this side, so a killpg right after the return cannot miss
    }
    int child_error = 0;
    ssize_t got;
    do {
        got = read(report[0], &child_error, sizeof child_error);
    } while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof child_error) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        errno = child_error;
        return -1;
    }
    return pid;
}

static int signal_pipe_write_end = -1;

static void write_signal_number(int sig) {
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe_write_end, &byte, 1);
    (void)ignored;
    errno = saved;
}

int forge_signal_pipe(const int *signals, int count) {
    int fds[2];
    if (make_pipe(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        return -1;
    }
    signal_pipe_write_end = fds[1];
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = write_signal_number;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (int i = 0; i < count; i++) {
        if (sigaction(signals[i], &action, NULL) != 0) {
            return -1;
        }
    }
    return fds[0];
}

int forge_become_subreaper(void) {
#ifdef __linux__
    return prctl(PR_SET_CHILD_SUBREAPER, 1);
#else
    errno = ENOSYS;
    return -1;
#endif
}
