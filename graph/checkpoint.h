/* checkpoint.h: checkpoints as Hugging Face GPT-2 directories.
 *
 * A checkpoint directory is what GPT2LMHeadModel.save_pretrained writes, so transformers loads
 * our weights and we load theirs:
 *   config.json            GPT2Config (vocab_size, n_embd, n_layer, n_head, n_positions, ...)
 *   model.safetensors      fp32 master weights, HF names, Conv1D [in, out] layouts, lm_head tied
 * plus, from us, what resuming needs (left out by --no-save-optim, Megatron-LM's flag: a
 * weights-only checkpoint then loads like any Hugging Face one, at iteration 1 with fresh AdamW
 * state):
 *   optimizer.safetensors  AdamW moments "exp_avg.<name>", "exp_avg_sq.<name>" (our layout)
 *   trainer_state.json     iteration, AdamW step, loss-scaler state (format "gpt50b-trainer", 1)
 * Saving writes a sibling DIR.tmp.PID and swaps it with DIR in one rename (checkpoint.c's
 * switch_in says how), so DIR is at every instant one complete checkpoint: a failed save, a crash
 * or a kill -9 anywhere in a save leaves the previous checkpoint or the new one, whole. A run
 * holds DIR.lock (an flock naming its PID) while it saves to DIR, and first removes what dead
 * runs left beside DIR, one line each, as swap folders are swept. The files hold full
 * tensors whatever the ZeRO-3 ranks: a checkpoint loads into any number of ranks and processes.
 * With several processes, process 0 writes (gathering each tensor's shards from the others,
 * one tensor at a time) and every process loads on its own, so --load must be readable
 * everywhere. Before writing anything, a save checks that the file system has room for the whole
 * checkpoint (the new one is written while the previous one still exists). */
#ifndef GPT50B_CHECKPOINT_H
#define GPT50B_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "gpt.h"
#include "schedule.h"

struct train_state {
    int64_t iteration; /* iterations completed */
    int64_t adam_step; /* AdamW steps applied (skipped iterations excluded) */
    struct loss_scaler scaler;
};

/* Reads DIR/config.json into cfg (L, C, NH, maxT, V; Vp is left to the caller). User error
 * (exit 2) when it is missing, unreadable or describes a model we cannot run. */
void checkpoint_read_config(const char *dir, struct gpt_config *cfg);
/* Loads weights (and, when DIR has them and st is not NULL, optimizer state and trainer state:
 * then returns 1; 0 for weights only). User error on a missing tensor, a wrong shape or dtype. */
int checkpoint_load(struct gpt *m, const char *dir, struct train_state *st);
/* Saves atomically the weights and, with with_optim, the optimizer and trainer state. Several
 * processes: call it in every process; returns process 0's status in all. Returns 0, or a
 * negative errno with a one-line message in err: -ENOSPC, before anything is written, when the
 * file system of DIR has less free space than the checkpoint needs. */
int checkpoint_save(struct gpt *m, const char *dir, const struct train_state *st, int with_optim,
                    char *err, size_t err_size);
/* Takes the lock of checkpoint folder dir (the file DIR.lock beside it) and tidies what dead
 * runs' saves left beside it: when dir is missing (a save stopped between the two renames of the
 * fallback without RENAME_EXCHANGE), the newest complete leftover is renamed back to dir; the
 * other leftovers are removed. One line on stderr per folder. hold (--save): keep the lock until
 * the process exits, and fail (exit 2) naming the PID of another run that holds it; else
 * (--load) let it go at once, and leave dir alone when another run holds it. */
void checkpoint_claim(const char *dir, int hold);
/* Fails (exit 2) now, before any training, when DIR could not be written later or its file
 * system has no room for one checkpoint of cfg (Vp set) with or without the optimizer state. */
void checkpoint_check_writable(const char *dir, const struct gpt_config *cfg, int with_optim);

#endif
