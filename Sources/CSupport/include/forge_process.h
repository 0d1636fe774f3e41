#ifndef FORGE_PROCESS_H
#define FORGE_PROCESS_H

#include <sys/types.h>

/// Starts `path` with `argv` and `envp` (NULL-terminated) and returns its pid, or -1 with errno
/// (also when the exec itself failed: the child reports its errno through a close-on-exec pipe).
///
/// Between fork and exec the child, using only async-signal-safe calls:
/// - becomes the leader of a new process group when `new_group` is non-zero, so the whole group
///   can be signalled at once (killpg) and the terminal's Ctrl-C reaches only the caller;
/// - arms PR_SET_PDEATHSIG with `death_signal` (0 = none): the kernel sends it when the calling
///   *thread* exits, so call this from the main thread, which lives as long as the process;
/// - resets every signal disposition and the signal mask (ignored and blocked signals would
///   otherwise survive the exec);
/// - changes to `directory` unless it is NULL;
/// - takes stdin from /dev/null and stdout/stderr from `stdout_fd`/`stderr_fd` (-1 = inherit);
/// - closes every other descriptor.
pid_t forge_spawn(const char *path, char *const argv[], char *const envp[], const char *directory,
                  int stdout_fd, int stderr_fd, int new_group, int death_signal);

/// Installs handlers for the given signals that write the signal number as one byte to a pipe,
/// and returns the pipe's read end (non-blocking, close-on-exec), or -1 with errno. Lets a
/// single-threaded loop wait for signals and children with poll(2).
int forge_signal_pipe(const int *signals, int count);

/// Makes this process a child subreaper (PR_SET_CHILD_SUBREAPER): descendants orphaned by their
/// parent are re-parented to it instead of init, so it can find and stop them. 0 or -1 with errno.
int forge_become_subreaper(void);

#endif
