/* probe.c: this host's disk and CPU AdamW rates, measured before a run starts (probe.h). */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adamw_rate.h"
#include "fsdir.h"

/* Adds one folder's rates: a probe file written, synced and read back. The file has no name
 * (O_TMPFILE), so no end of the process, kill -9 included, leaves it behind; where the file
 * system cannot make one, a named file is removed as soon as it is open. */
static int probe_folder(struct aio_engine *e, const char *dir, void *buf, size_t bytes,
                        struct machine *m, char *err, size_t errlen)
{
    struct aio_file *f = aio_file_open(e, dir, O_RDWR | O_TMPFILE, 0600, err, errlen);
    if (!f && (errno == EOPNOTSUPP || errno == EISDIR)) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/.gpt50b-probe-%ld", dir, (long)getpid());
        f = aio_file_open(e, path, O_RDWR | O_CREAT | O_EXCL, 0600, err, errlen);
        if (f) unlink(path);
    }
    if (!f) return -1;
    double write_s = aio_timed_write(e, f, buf, bytes, err, errlen);
    double read_s = write_s < 0 ? -1 : aio_timed_read(e, f, buf, bytes, err, errlen);
    aio_file_close(f);
    if (read_s < 0) return -1;
    m->nvme_write_GBps += (double)bytes / write_s / 1e9;
    m->nvme_read_GBps += (double)bytes / read_s / 1e9;
    return 0;
}

static int probe_disk(struct machine *m, const char *folders, const struct aio_config *cfg,
                      size_t bytes, char *err, size_t errlen)
{
    char dirs[FSDIR_LIST_MAX][PATH_MAX], why[256];
    int n = fsdir_list_split(folders, dirs, why, sizeof why);
    if (n < 0) {
        snprintf(err, errlen, "--nvme-path %s: %s", folders, why);
        return -1;
    }
    void *buf = aio_alloc_aligned(bytes);
    if (!buf) {
        snprintf(err, errlen, "out of host memory for the disk probe's %zu bytes", bytes);
        return -1;
    }
    memset(buf, 0x5a, bytes);
    struct aio_engine *e = aio_engine_create(cfg, err, errlen);
    int rc = e ? 0 : -1;
    struct stat st[FSDIR_LIST_MAX];
    for (int i = 0; i < n && rc == 0; i++) {
        if (stat(dirs[i], &st[i]) != 0) {
            snprintf(err, errlen,
                     "%s: the NVMe folder does not exist: create it or fix --nvme-path", dirs[i]);
            rc = -1;
            break;
        }
        int shared = 0; /* a second folder of one file system adds no drive */
        for (int j = 0; j < i; j++)
            shared |= st[j].st_dev == st[i].st_dev;
        if (!shared) rc = probe_folder(e, dirs[i], buf, bytes, m, err, errlen);
    }
    if (e) aio_engine_destroy(e);
    free(buf);
    return rc;
}

/* GB/s of the AdamW kernel this build selects, on all OpenMP threads, over ADAMW_PROBE_PARAMS
 * parameters; 0 out of memory. */
static double probe_adamw(enum dtype dt)
{
    struct adamw_rate r;
    if (adamw_rate_init(&r, ADAMW_PROBE_PARAMS, dt) != 0) return 0;
    double GBps = adamw_rate_bytes(&r) / adamw_rate_step_s(&r, cpu_isa_selected(), 1) / 1e9;
    adamw_rate_free(&r);
    return GBps;
}

int probe_host(struct machine *m, const char *folders, const struct aio_config *cfg, size_t bytes,
               enum dtype dt, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "this host");
    m->nodes = 1;
    m->cpu_cores = omp_get_max_threads();
    if (probe_disk(m, folders, cfg, bytes, err, errlen) != 0) return -1;
    m->cpu_adamw_GBps = m->cpu_adamw_core_GBps = probe_adamw(dt);
    if (m->cpu_adamw_GBps <= 0) {
        snprintf(err, errlen, "out of host memory for the AdamW probe's %zu parameters",
                 ADAMW_PROBE_PARAMS);
        return -1;
    }
    return 0;
}
