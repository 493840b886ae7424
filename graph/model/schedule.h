/* schedule.h: host-side training schedules: the learning rate (Megatron-LM's warmup then
 * constant, linear or cosine decay) and fp16 loss scaling with DeepSpeed's semantics. Pure
 * arithmetic, no tasks. */
#ifndef GPT50B_SCHEDULE_H
#define GPT50B_SCHEDULE_H

#include <stdint.h>

enum lr_decay_style {
    LR_DECAY_CONSTANT,
    LR_DECAY_LINEAR,
    LR_DECAY_COSINE,
};

struct lr_schedule {
    double max_lr, min_lr;
    int64_t warmup_iters, decay_iters;
    enum lr_decay_style style;
};

/* Learning rate of (1-based) iteration `it`: linear warmup from max_lr/warmup_iters to max_lr
 * over warmup_iters iterations, then (constant style) max_lr, or a decay from max_lr to min_lr
 * at decay_iters, after which min_lr. As Megatron-LM's AnnealingLR, counted from 1 so that the
 * first iteration does not waste itself at lr 0. */
double lr_at(const struct lr_schedule *s, int64_t it);

/* DeepSpeed's loss scaler (deepspeed/runtime/fp16/loss_scaler.py). Static when dynamic == 0. */
struct loss_scaler {
    int dynamic;
    double scale;        /* current scale */
    double min_scale;    /* min_loss_scale */
    int64_t window;      /* loss_scale_window: good iterations before the scale doubles */
    int hysteresis;      /* delayed_shift: overflows tolerated before the scale halves */
    int hysteresis_left; /* cur_hysteresis */
    int64_t iter;        /* cur_iter */
    int64_t last_overflow_iter;
};

void loss_scaler_init(struct loss_scaler *s, int dynamic, double initial_scale, double min_scale,
                      int64_t window, int hysteresis);
/* Records the outcome of one iteration (overflow: the gradients held an inf or NaN and the step
 * was skipped) and moves the scale as DeepSpeed's DynamicLossScaler.update_scale does. */
void loss_scaler_update(struct loss_scaler *s, int overflow);

#endif
