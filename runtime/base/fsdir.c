/* fsdir.c: flat-folder removal and PID lock files (see fsdir.h). */
#include "fsdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

int fsdir_remove(const char *path, int *nfiles, uint64_t *nbytes)
{
    DIR *dp = opendir(path);
    if (!dp) return errno == ENOENT ? 0 : -errno;
    int rc = 0, dfd = dirfd(dp);
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && nbytes)
            *nbytes += (uint64_t)st.st_blocks * 512;
        if (unlinkat(dfd, de->d_name, 0) == 0) {
            if (nfiles) ++*nfiles;
        } else if (errno != ENOENT && !rc) {
            rc = -errno;
        }
    }
    closedir(dp);
    if (rmdir(path) < 0 && errno != ENOENT && !rc) rc = -errno;
    return rc;
}

int fsdir_sync(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
    if (fd < 0) return -errno;
    if (fsync(fd) < 0 && errno != EINVAL) rc = -errno;
    close(fd);
    return rc;
}

int fsdir_lock(const char *path, long *holder)
{
    /* A run that lets its lock go unlinks the file first: one that opened it just before then
     * holds a lock on a file nobody else can find, so a lock counts only while the file at path
     * is still the one locked (else try again on the new file). */
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int e = errno;
            char buf[32] = "";
            ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
            close(fd);
            if (e != EWOULDBLOCK) return -e;
            *holder = n > 0 ? strtol(buf, NULL, 10) : 0;
            return -EBUSY;
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_ino == now.st_ino &&
            held.st_dev == now.st_dev) {
            char buf[32];
            int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
                int e = errno ? errno : EIO;
                close(fd);
                return -e;
            }
            return fd;
        }
        close(fd);
    }
}

void fsdir_unlock(int fd, const char *path)
{
    if (fd < 0) return;
    unlink(path);
    close(fd);
}

int fsdir_list_split(const char *list, char out[][PATH_MAX], char *err, size_t errlen)
{
    struct stat st[FSDIR_LIST_MAX];
    bool have[FSDIR_LIST_MAX];
    for (int n = 0;; n++) {
        const char *end = strchr(list, ',');
        size_t len = end ? (size_t)(end - list) : strlen(list);
        if (n == FSDIR_LIST_MAX) {
            snprintf(err, errlen, "more than %d folders: list at most %d", FSDIR_LIST_MAX,
                     FSDIR_LIST_MAX);
            return -1;
        }
        if (len == 0 || len >= PATH_MAX) {
            snprintf(err, errlen, "%s folder name in the list: separate folders with one comma",
                     len ? "an over-long" : "an empty");
            return -1;
        }
        memcpy(out[n], list, len);
        out[n][len] = '\0';
        have[n] = stat(out[n], &st[n]) == 0;
        for (int i = 0; i < n; i++) {
            if (strcmp(out[i], out[n]) && !(have[i] && have[n] && st[i].st_dev == st[n].st_dev &&
                                            st[i].st_ino == st[n].st_ino))
                continue;
            snprintf(err, errlen, "%s and %s are the same folder: list each folder once", out[i],
                     out[n]);
            return -1;
        }
        if (!end) return n + 1;
        list = end + 1;
    }
}

int fsdir_free_space(const char *path, int64_t *bytes, dev_t *dev)
{
    struct statvfs vfs;
    struct stat st;
    if (statvfs(path, &vfs) != 0 || stat(path, &st) != 0) return -errno;
    *bytes = (int64_t)vfs.f_bavail * (int64_t)vfs.f_frsize;
    *dev = st.st_dev;
    return 0;
}
