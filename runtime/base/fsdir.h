/* fsdir.h: folder helpers shared by the swap folders (swap.c) and the checkpoints (checkpoint.c):
 * removing a flat folder, and the PID lock files that make a folder one run's alone.
 *
 * A lock is an flock on a small file that holds the PID of the run that took it. flock locks end
 * with the process however it ends (kill -9 included), so a lock file that exists but that nobody
 * holds is a dead run's: the next run takes it over. */
#ifndef GPT50B_FSDIR_H
#define GPT50B_FSDIR_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Most folders one list may name. */
#define FSDIR_LIST_MAX 8

/* Unlinks every entry of the flat folder path, then the folder, counting what it removed (either
 * count may be NULL). A missing folder is not an error. Returns 0 or -errno of the first failure.
 * O(entries). */
int fsdir_remove(const char *path, int *nfiles, uint64_t *nbytes);

/* fsyncs the folder path, so that the entries created, renamed or removed in it survive a crash.
 * Returns 0 or -errno; a file system that cannot sync a folder (EINVAL) counts as done. */
int fsdir_sync(const char *path);

/* Takes the exclusive flock of the lock file `path` (created if missing) without waiting and
 * writes this process's PID into it. Returns the descriptor to hold (close-on-exec) or: -EBUSY
 * when another live process holds it, with *holder its PID (0 when the file names none), or
 * another -errno when the file cannot be created. O(1). */
int fsdir_lock(const char *path, long *holder);
/* Removes the lock file and lets the lock go (fd from fsdir_lock; -1 does nothing). */
void fsdir_unlock(int fd, const char *path);

/* Splits a comma-separated folder list ("/nvme0,/nvme1"; one folder is a list of one) into
 * out[0..n); returns n. -1 with one line in err (which the caller prefixes with its flag) when an
 * entry is empty, a name is longer than PATH_MAX - 1, there are more than FSDIR_LIST_MAX, or a
 * folder is listed twice (by name, or by inode when both exist). The folders need not exist.
 * O(n^2). */
int fsdir_list_split(const char *list, char out[][PATH_MAX], char *err, size_t errlen);

/* Free space (statvfs f_bavail, in bytes) of the file system that holds path, and that file
 * system's device (folders on one device share the space). Returns 0 or -errno. */
int fsdir_free_space(const char *path, int64_t *bytes, dev_t *dev);

#endif
