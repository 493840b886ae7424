/* test_schedule.c: learning-rate schedules against Megatron-LM's formulas and the loss scaler
 * against DeepSpeed's DynamicLossScaler, step by step. */
#include <math.h>
#include <stdio.h>

#include "schedule.h"

static int failures;

static void expect(const char *what, double got, double ref)
{
    if (fabs(got - ref) > 1e-12 * fmax(1.0, fabs(ref))) {
        printf("FAIL %s: got %.12g expected %.12g\n", what, got, ref);
        failures++;
    }
}

int main(void)
{
    struct lr_schedule s = {1e-3, 1e-4, 10, 110, LR_DECAY_COSINE};
    expect("warmup first", lr_at(&s, 1), 1e-4);
    expect("warmup end", lr_at(&s, 10), 1e-3);
    expect("cosine middle", lr_at(&s, 60), 1e-4 + 0.5 * (1e-3 - 1e-4));
    expect("cosine end", lr_at(&s, 110), 1e-4);
    expect("after decay", lr_at(&s, 500), 1e-4);
    s.style = LR_DECAY_LINEAR;
    expect("linear quarter", lr_at(&s, 35), 1e-4 + 0.75 * (1e-3 - 1e-4));
    s.style = LR_DECAY_CONSTANT;
    expect("constant", lr_at(&s, 80), 1e-3);
    s.warmup_iters = 0;
    expect("no warmup", lr_at(&s, 1), 1e-3);

    /* Dynamic: hysteresis 2 halves on the second overflow in a row; window 3 doubles once three
     * good iterations lie between the last overflow and the current one (DeepSpeed's
     * stable_interval), then every three. */
    struct loss_scaler ls;
    loss_scaler_init(&ls, 1, 1024, 256, 3, 2);
    loss_scaler_update(&ls, 1);
    expect("first overflow absorbed by hysteresis", ls.scale, 1024);
    loss_scaler_update(&ls, 1);
    expect("second overflow halves", ls.scale, 512);
    loss_scaler_update(&ls, 1);
    expect("hysteresis stays spent", ls.scale, 256);
    loss_scaler_update(&ls, 1);
    expect("minimum scale", ls.scale, 256);
    loss_scaler_update(&ls, 0);
    loss_scaler_update(&ls, 0);
    loss_scaler_update(&ls, 0);
    expect("no growth before the window", ls.scale, 256);
    loss_scaler_update(&ls, 0);
    expect("growth after the window", ls.scale, 512);
    expect("hysteresis restored", ls.hysteresis_left, 2);
    loss_scaler_update(&ls, 0);
    loss_scaler_update(&ls, 0);
    loss_scaler_update(&ls, 0);
    expect("second growth", ls.scale, 1024);

    struct loss_scaler st;
    loss_scaler_init(&st, 0, 1, 1, 1000, 2);
    loss_scaler_update(&st, 1);
    expect("static scale ignores overflow", st.scale, 1);

    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures != 0;
}
