/* schedule.c: learning-rate schedules and the dynamic loss scaler (see schedule.h). */
#include "schedule.h"

#include <math.h>

double lr_at(const struct lr_schedule *s, int64_t it)
{
    if (s->warmup_iters > 0 && it <= s->warmup_iters)
        return s->max_lr * (double)it / (double)s->warmup_iters;
    if (s->style == LR_DECAY_CONSTANT) return s->max_lr;
    if (it > s->decay_iters) return s->min_lr;
    double span = (double)(s->decay_iters - s->warmup_iters);
    double ratio = span > 0 ? (double)(it - s->warmup_iters) / span : 1.0;
    double coeff = s->style == LR_DECAY_LINEAR ? 1.0 - ratio : 0.5 * (cos(M_PI * ratio) + 1.0);
    return s->min_lr + coeff * (s->max_lr - s->min_lr);
}

void loss_scaler_init(struct loss_scaler *s, int dynamic, double initial_scale, double min_scale,
                      int64_t window, int hysteresis)
{
    s->dynamic = dynamic;
    s->scale = initial_scale;
    s->min_scale = min_scale;
    s->window = window;
    s->hysteresis = hysteresis;
    s->hysteresis_left = hysteresis;
    s->iter = 0;
    s->last_overflow_iter = -1;
}

void loss_scaler_update(struct loss_scaler *s, int overflow)
{
    if (!s->dynamic) {
        s->iter++;
        return;
    }
    if (overflow) {
        if (s->hysteresis == 1 || s->hysteresis_left == 1) {
            s->scale = fmax(s->scale / 2, s->min_scale);
        } else {
            s->hysteresis_left--;
        }
        s->last_overflow_iter = s->iter;
    } else {
        int64_t stable = s->iter - s->last_overflow_iter - 1;
        if (stable > 0 && stable % s->window == 0) {
            s->hysteresis_left = s->hysteresis;
            s->scale *= 2;
        }
    }
    s->iter++;
}
