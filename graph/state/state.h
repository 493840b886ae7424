/* state.h: the model's state: the trainable tensors' ZeRO-3 shards, where each lives, and the
 * NVMe swap of their optimizer state.
 *
 * For each tensor of the table (model.h) and each data-parallel rank of this process, a shard of
 * state_shard_elems elements: the compute copy and the gradient in the model's dtype, the fp32
 * master weights and AdamW's two moments. One rank: the shard is the whole tensor. The state
 * decides each tensor's tier (device, pinned or pageable RAM, NVMe), its split into pieces for
 * tiling and for the CPU optimizer, and draws the initial weights. It submits no compute: the
 * task graph (graph/gpt.c) reads and writes the shards through the codelets, and the checkpoints
 * (graph/checkpoint.c) see whole tensors through state_acquire and state_release.
 *
 * NVMe swap is in three pieces, each at its own layer:
 *   runtime/swap.c   the swap file: its format (header, checksummed blocks, generations), its
 *                    folder, and its I/O over the libaio engine (runtime/aio.c); nothing of models
 *   codelets/swap.c  the swap-in and swap-out tasks: one shard's master, m and v regions between
 *                    its file and a set of three RAM buffers
 *   graph/state/     which tensors swap (a fixed plan from the resident share), the aio engine,
 *                    the swap folder and one file per shard, the buffer sets and which shard uses
 *                    which, and the generation the files hold; graph/gpt.c's update submits
 *                    swap-in, AdamW and swap-out with what state_swap_slot gives.
 *
 *     struct state *s = state_create(&tab, &opt, rank_pinned_bytes); // shards, swap, init
 *     struct state_shard *sh = state_shard(s, i, r);   // tasks read sh->param, write sh->grad
 *     float *w = state_acquire(s, i, STATE_MASTER, 1); // a checkpoint loads tensor i
 *     state_release(s, i, STATE_MASTER, w, 1);
 *     state_sync_params(s);                            // masters -> compute copies
 *     state_destroy(s);                                // after the graph's tensors */
#ifndef GPT50B_STATE_H
#define GPT50B_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "aio.h"
#include "fsdir.h"
#include "model.h"
#include "numa.h"
#include "rt.h"
#include "tier.h"

struct comm;
struct swap_file;

struct state_options {
    struct comm *comm; /* ZeRO-3 ranks (gpt.h's gpt_options.comm); NULL: one rank */
    enum dtype dt;     /* compute copies and gradients; master weights and moments are fp32 */
    uint64_t seed;     /* weight initialisation */
    enum tier optim_tier;
    int offload_param;   /* parameters have their home in pinned CPU memory */
    int tile_size;       /* linear layers wider than this are split into tiles (0: none) */
    int64_t optim_chunk; /* AdamW on CPU workers: pieces of at most this many elements (0: whole) */
    /* ZeRO-Offload's delayed parameter update: every shard gets a second compute copy and
     * gradient (param_alt, grad_alt), which state_delayed_swap exchanges with the first at each
     * step. Only with the CPU optimizer (TIER_CPU or TIER_NVME) and fp16/bf16 compute copies. */
    int delayed_update;
    /* TIER_NVME only: */
    const char *nvme_path;        /* the folder that receives this process's swap folder, or a
                                   * comma-separated list of them, one per drive (fsdir_list_split) */
    int swap_buffers;             /* RAM buffer sets per rank (>= 1; 0: 1) */
    double resident_fraction;     /* share of a rank's optimizer bytes planned to stay in RAM */
    const struct aio_config *aio; /* the I/O engine's settings (NULL: defaults) */
};

/* Local rank r's shard of one tensor. The master (fp32) is what checkpoints hold; `param` is the
 * compute copy in the model's dtype (the master itself in fp32 runs). master, m and v are NULL
 * when the tensor's optimizer state is in swap files (state_swapped). param_alt and grad_alt:
 * the delayed update's other compute copy and gradient (NULL without it). */
struct state_shard {
    struct tensor *param, *grad, *master, *m, *v;
    struct tensor *param_alt, *grad_alt;
};

struct state;

/* Plans the shards and the swap, creates the pinned pool (the shards' and swap buffers' pinned
 * copies, plus rank_pinned_bytes for each local rank's own pinned tensors, summed as
 * host_pool_piece_bytes counts them), registers the shards, creates the swap folder and files
 * and writes the initial weights (GPT-2's: model.h's init kinds, from opt->seed; every rank's
 * weights are those of one rank) and their compute copies. The table must outlive the state.
 * User error when the swap folder cannot be used or the disk cannot hold the state (found here,
 * at preallocation, never mid-run). The simulation (rt_simulated()) creates no swap folder or
 * files and draws no weights: nothing reads them there. */
struct state *state_create(const struct model_table *tab, const struct state_options *opt,
                           size_t rank_pinned_bytes);
/* Frees the shards, the swap files and folder, the engine and the pinned pool: free every other
 * tensor carved from the pool first. Waits for every submitted task. */
void state_destroy(struct state *s);

const struct model_table *state_table(const struct state *s);
/* Data-parallel ranks in this process (comm_local; 1 without a communicator), in all processes
 * (comm_world), local rank r's global rank, and this process's index (0 without MPI). */
int state_ranks(const struct state *s);
int state_world(const struct state *s);
int state_global_rank(const struct state *s, int r);
int state_process(const struct state *s);

/* Elements of each shard of tensor i (the whole tensor with one rank; padded past the tensor's
 * end in the last ranks' shards with several). */
size_t state_shard_elems(const struct state *s, int i);
struct state_shard *state_shard(struct state *s, int i, int r);
/* Tensor i's optimizer state streams from NVMe (the same for every rank's shard). */
int state_swapped(const struct state *s, int i);
/* Parameters and gradients have their home in pinned CPU memory: with the optimizer off the
 * device (it reads the gradients and writes the parameters there), or parameter offload. */
int state_params_in_pinned_ram(const struct state *s);
/* Where AdamW runs, and so where master weights are cast to the compute copies. */
enum rt_where state_optim_where(const struct state *s);
/* Tasks that refresh the resident shards' compute copies from their masters (after a load;
 * nothing in fp32, where the master is the compute copy). */
void state_sync_params(struct state *s);
/* The delayed update: every shard's param and grad exchanged with param_alt and grad_alt (the
 * tasks submitted from now on use the other pair). */
void state_delayed_swap(struct state *s);

/* One step of a swapped shard: a swap-in of `file` at `generation` into buf[0..2] (master, m,
 * v), AdamW on them, a swap-out with generation + 1. Swapped tensors take the rank's buffer sets
 * in turn, in table order, so StarPU orders the swap-in of the shard that next uses a set after
 * the swap-out of the one before it: up to swap_buffers shards per rank are in flight. */
struct state_swap {
    struct tensor *buf;     /* [3] */
    struct swap_file *file; /* NULL in the simulation */
    size_t region_bytes;    /* of each of master, m and v in the file and in the buffers */
    uint64_t generation;    /* what the file holds now */
};
struct state_swap state_swap_slot(struct state *s, int i, int r);
/* The update's swap-outs are submitted: the files' generation moves on. */
void state_swap_advance(struct state *s);

/* The fp32 optimizer state of a tensor, wherever it lives. */
enum state_kind {
    STATE_MASTER,
    STATE_EXP_AVG,
    STATE_EXP_AVG_SQ,
};
/* A host view of state `which` of tensor i (fp32, our layout, its shape's elements): a copy of
 * the shards' host copies, or of what their swap files hold at the current generation (then
 * after every submitted task). For checkpoints: one tensor at a time, so a save or a load needs
 * RAM for the largest tensor only. state_release ends the view; with `write`, it stores the
 * view back (the host copies, or the swap files with the current generation) and, for a swapped
 * master, refreshes the compute copies (resident ones: state_sync_params). */
float *state_acquire(struct state *s, int i, enum state_kind which, int write);
void state_release(struct state *s, int i, enum state_kind which, float *view, int write);
/* Several processes: a write view holds this process's slices (the others' are zero) and the
 * release stores only those, so every process loads a checkpoint alone. A read view gathers the
 * tensor from every process, and only process 0 takes them (saves): meanwhile the others wait in
 * state_serve, which returns the status that process 0 passes to state_serve_end when it has
 * read all it needs (any tensors, in any order). One process: serve_end does nothing. */
int state_serve(struct state *s);
void state_serve_end(struct state *s, int status);

/* Optimizer-state placement, for logs: tensors, and bytes of this process's ranks' shards (the
 * whole model with one rank), resident in RAM or on the device and streamed from NVMe (all zero
 * streamed unless TIER_NVME); the swap buffers of all its ranks. */
struct state_optim_placement {
    int resident_tensors, swapped_tensors;
    uint64_t resident_bytes, swapped_bytes, swap_buffer_bytes;
    int adamw_tasks; /* AdamW tasks per step (tensors in pieces count each piece) */
    /* per --nvme-path folder (none: 0): where its I/O threads run, and its swap files */
    int folders;
    struct numa_io_choice io_numa[FSDIR_LIST_MAX];
    int folder_files[FSDIR_LIST_MAX];
    uint64_t folder_bytes[FSDIR_LIST_MAX];
};
void state_optim_placement(const struct state *s, struct state_optim_placement *out);
/* Bytes the NVMe swap has read and written so far for all of this process's ranks (the data;
 * headers and checksum tables are not counted), and the bytes that swap-outs of skipped steps
 * (fp16 overflow) did not have to write; zero unless TIER_NVME. The simulation counts what its
 * submitted swap tasks move: each update reads and writes every swapped shard whole. */
void state_nvme_traffic(const struct state *s, uint64_t *read, uint64_t *written, uint64_t *kept);

#endif
