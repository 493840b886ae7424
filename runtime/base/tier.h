/* tier.h: where a kind of model state lives, one enum for the config reader, the plan and the
 * engine.
 *
 * TIER_GPU is the compute device: the GPU when there is one, else the CPU (DeepSpeed's "device":
 * "none"). TIER_CPU is RAM, with the optimizer's work on CPU workers (ZeRO-Offload); TIER_NVME is
 * swap files streamed through RAM buffers, the work on CPU workers (ZeRO-Infinity). */
#ifndef GPT50B_TIER_H
#define GPT50B_TIER_H

enum tier { TIER_GPU, TIER_CPU, TIER_NVME, NTIERS };

/* "GPU", "CPU", "NVMe" */
const char *tier_name(enum tier t);

#endif
