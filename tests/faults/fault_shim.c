/* fault_shim.c: an LD_PRELOAD library that crashes the program at a chosen file-system step, to
 * test that every state a crash can leave is recoverable (tests/faults/test_faults.sh).
 *
 * A step is a call that changes what a crash leaves on disk: mkdir, creating a file (open with
 * O_CREAT), rename, renameat2, unlink, unlinkat, rmdir, remove, fsync, fdatasync. Only steps on a
 * path that contains FAULT_PATH count (the checkpoint's folder, say), numbered from 1 in call
 * order over all threads. Environment:
 *   FAULT_PATH  the substring a step's path must contain; unset, the shim does nothing
 *   FAULT_AT    N: the process kills itself with SIGKILL (no exit handler runs, as in a power
 *               loss of the process) just before step N, i.e. between steps N-1 and N
 *   FAULT_LOG   a file that gets one line "N OP PATH" per step (how many steps a save takes)
 *   FAULT_NO_EXCHANGE  1: renameat2 with RENAME_EXCHANGE fails with EINVAL, as on file systems
 *               without it (NFS), so the save takes its two-rename fallback
 * Paths of *at calls relative to a folder descriptor are resolved through /proc/self/fd. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic long steps;

/* The path of name relative to folder descriptor dirfd, into buf. */
static const char *resolve(int dirfd, const char *name, char *buf, size_t n)
{
    char link[64], dir[PATH_MAX];
    if (!name || name[0] == '/' || dirfd == AT_FDCWD) return name ? name : "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
    ssize_t len = readlink(link, dir, sizeof dir - 1);
    if (len < 0) return name;
    dir[len] = '\0';
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

/* Counts the step if path is watched; logs it; crashes before the chosen one. */
static void step(const char *op, const char *path)
{
    const char *watch = getenv("FAULT_PATH");
    if (!watch || !*watch || !strstr(path, watch)) return;
    long n = atomic_fetch_add(&steps, 1) + 1;
    const char *log = getenv("FAULT_LOG"), *at = getenv("FAULT_AT");
    int crash = at && atol(at) == n;
    if (log) {
        int fd = ((int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64"))(
            log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dprintf(fd, "%ld %s %s%s\n", n, op, path, crash ? " CRASH" : "");
            close(fd);
        }
    }
    if (crash) raise(SIGKILL);
}

static void fd_step(const char *op, int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    path[len < 0 ? 0 : len] = '\0';
    step(op, path);
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

int mkdir(const char *path, mode_t mode)
{
    step("mkdir", path);
    return REAL("mkdir", int (*)(const char *, mode_t))(path, mode);
}

/* Meson builds with _FILE_OFFSET_BITS=64, so this defines open64, which the program calls. */
int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & O_CREAT) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    if (flags & O_CREAT) step("create", path);
    return REAL("open64", int (*)(const char *, int, ...))(path, flags, mode);
}

int rename(const char *from, const char *to)
{
    char both[2 * PATH_MAX + 4];
    snprintf(both, sizeof both, "%s -> %s", from, to);
    step("rename", both);
    return REAL("rename", int (*)(const char *, const char *))(from, to);
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
    char a[PATH_MAX], b[PATH_MAX], both[2 * PATH_MAX + 4];
    snprintf(both, sizeof both, "%s <-> %s", resolve(fromfd, from, a, sizeof a),
             resolve(tofd, to, b, sizeof b));
    step(flags & RENAME_EXCHANGE ? "exchange" : "renameat2", both);
    const char *no = getenv("FAULT_NO_EXCHANGE");
    if ((flags & RENAME_EXCHANGE) && no && atoi(no)) {
        errno = EINVAL;
        return -1;
    }
    return REAL("renameat2", int (*)(int, const char *, int, const char *, unsigned))(
        fromfd, from, tofd, to, flags);
}

int unlink(const char *path)
{
    step("unlink", path);
    return REAL("unlink", int (*)(const char *))(path);
}

int unlinkat(int dirfd, const char *name, int flags)
{
    char buf[PATH_MAX];
    step("unlink", resolve(dirfd, name, buf, sizeof buf));
    return REAL("unlinkat", int (*)(int, const char *, int))(dirfd, name, flags);
}

int rmdir(const char *path)
{
    step("rmdir", path);
    return REAL("rmdir", int (*)(const char *))(path);
}

int remove(const char *path)
{
    step("remove", path);
    return REAL("remove", int (*)(const char *))(path);
}

int fsync(int fd)
{
    fd_step("fsync", fd);
    return REAL("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    fd_step("fdatasync", fd);
    return REAL("fdatasync", int (*)(int))(fd);
}
