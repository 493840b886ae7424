/* probe.h: this host's rates, measured at start for --nvme-resident-fraction auto: the swap
 * folders' write and read rates at the run's I/O settings, and the CPU AdamW's.
 *
 *     struct machine m;
 *     if (probe_host(&m, nvme_path, &aio, 1 << 30, err, sizeof err)) user_fail("%s", err);
 *     in.machine = &m; // the plan's step times and plan_balance_share at these rates */
#ifndef GPT50B_PROBE_H
#define GPT50B_PROBE_H

#include <stddef.h>

#include "aio.h"
#include "dtype.h"
#include "machine.h"

/* One node of this host as a described machine holding the measured rates: nvme_write_GBps and
 * nvme_read_GBps of `bytes` written (and synced) then read back in a file of each folder of the
 * comma list `folders` with the engine at cfg (the folders on distinct file systems add up: one
 * drive each; the file has no name), and cpu_adamw_GBps of the selected AdamW kernel over
 * ADAMW_PROBE_PARAMS parameters of dt on all OpenMP threads (adamw_rate.h: 2 x dtype + 24 bytes
 * per parameter, one step timed after a warm-up one). Returns 0, or -1 with one line in err (a
 * folder that does not exist or refuses the file, a full disk). About a second at 2 GB/s for 1 GiB.
 */
#define ADAMW_PROBE_PARAMS ((size_t)16 << 20)
int probe_host(struct machine *m, const char *folders, const struct aio_config *cfg, size_t bytes,
               enum dtype dt, char *err, size_t errlen);

#endif
