/* test_fixture.c: the model against PyTorch. Loads the fixture that scripts/make_fixture.py
 * recorded with transformers' GPT2LMHeadModel (fp32, CPU) and checks step 1's logits and every
 * gradient, then the losses and gradient norms of 10 AdamW steps with clipping, in llm.c's
 * sequential data order. Runs on CPU workers (suite cpu) or, with argument "cuda", on the GPU
 * (suite gpu; exit 77 without one). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dataset.h"
#include "gpt.h"
#include "loader.h"
#include "safetensors.h"

/* fp32 on both sides, but summation orders differ (BLAS vs PyTorch's kernels). */
#define LOGITS_ATOL 2e-5
#define LOGITS_RTOL 1e-4
#define GRAD_ATOL   2e-6
#define GRAD_RTOL   2e-3
#define LOSS_ATOL   1e-4 /* the issue asks for 1e-3 or better */
#define NORM_RTOL   1e-3

static int failures;

/* Compares n values; prints the worst element and counts a failure when over tolerance. */
static void compare(const char *what, const float *got, const float *ref, size_t n, double atol,
                    double rtol)
{
    size_t worst = 0;
    double worst_excess = -INFINITY, max_err = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]), excess = err - (atol + rtol * fabs(ref[i]));
        max_err = fmax(max_err, err);
        if (excess > worst_excess || isnan(got[i])) {
            worst_excess = isnan(got[i]) ? INFINITY : excess;
            worst = i;
        }
    }
    if (worst_excess > 0) {
        printf("FAIL %s: element %zu got %.9g ref %.9g (atol %g rtol %g)\n", what, worst,
               got[worst], ref[worst], atol, rtol);
        failures++;
    } else {
        printf("ok   %s: max abs error %.3g over %zu values\n", what, max_err, n);
    }
}

static const struct safetensors_tensor *need(const struct safetensors_file *f, const char *name)
{
    const struct safetensors_tensor *t = safetensors_find(f, name);
    if (!t || t->dtype != SAFETENSORS_F32) {
        printf("FAIL fixture has no fp32 tensor %s\n", name);
        exit(1);
    }
    return t;
}

int main(int argc, char **argv)
{
    int cuda = argc > 1 && strcmp(argv[1], "cuda") == 0;
    const char *top = getenv("GPT50B_TOP");
    char dir[4096], path[4096], err[512];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/gpt2-tiny", top ? top : ".");
    snprintf(path, sizeof path, "%s/losses.json", dir);
    json_error_t jerr;
    json_t *ref = json_load_file(path, 0, &jerr);
    if (!ref) {
        printf("FAIL %s: %s (run scripts/make_fixture.py on a host with PyTorch)\n", path,
               jerr.text);
        return 1;
    }
    if (!cuda) setenv("STARPU_NCUDA", "0", 1);
    rt_init(&(struct rt_options){.quiet = 1});
    if (cuda && rt_device() != RT_DEVICE_CUDA) {
        printf("SKIP no CUDA device\n");
        rt_shutdown();
        return 77;
    }

    json_t *conf = json_object_get(ref, "config");
    int B = (int)json_integer_value(json_object_get(conf, "B"));
    int T = (int)json_integer_value(json_object_get(conf, "T"));
    struct gpt_config cfg;
    snprintf(path, sizeof path, "%s/model", dir);
    checkpoint_read_config(path, &cfg);
    cfg.Vp = gpt_padded_vocab(cfg.V, 128);
    struct gpt_options opt = {.dt = DTYPE_FP32, .B = B, .T = T, .seed = 1};
    struct gpt *m = gpt_create(&cfg, &opt);
    checkpoint_load(m, path, NULL);

    snprintf(path, sizeof path, "%s/tokens.bin", dir);
    struct dataset *d = dataset_open(path, err, sizeof err);
    if (!d) {
        printf("FAIL %s\n", err);
        return 1;
    }
    struct loader ld;
    loader_init(&ld, d, 0, dataset_ntokens(d), B, T, DATA_ORDER_SEQUENTIAL, 0, "fixture");
    size_t N = (size_t)B * T;
    int32_t *in = malloc(N * sizeof *in), *tg = malloc(N * sizeof *tg);

    /* Step 1: logits and gradients. */
    struct safetensors_file step1;
    snprintf(path, sizeof path, "%s/step1.safetensors", dir);
    if (safetensors_open(&step1, path, err, sizeof err) < 0) {
        printf("FAIL %s\n", err);
        return 1;
    }
    loader_batch(&ld, 0, in, tg);
    gpt_set_batch(m, in, tg);
    gpt_forward(m);
    float *logits = malloc(N * cfg.Vp * sizeof *logits), *ours = malloc(N * cfg.V * sizeof *ours);
    gpt_read_logits(m, logits);
    for (size_t n = 0; n < N; n++)
        memcpy(ours + n * cfg.V, logits + n * cfg.Vp, cfg.V * sizeof *ours);
    compare("logits", ours, need(&step1, "logits")->data, N * cfg.V, LOGITS_ATOL, LOGITS_RTOL);
    gpt_backward(m, 1.0f, 0, 1);
    for (int i = 0; i < gpt_num_tensors(m); i++) {
        const struct gpt_param *p = gpt_tensor(m, i);
        char name[160];
        size_t rows = p->shape[0], cols = p->shape[1];
        size_t hf_rows = p->hf_rows ? (size_t)p->hf_rows : rows;
        float *g = malloc(rows * cols * sizeof *g), *hf = malloc(rows * cols * sizeof *hf);
        gpt_read_grad(m, i, g);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++)
                hf[p->conv1d ? c * rows + r : r * cols + c] = g[r * cols + c];
        snprintf(name, sizeof name, "grad.%s", p->name);
        compare(name, hf, need(&step1, name)->data, hf_rows * cols, GRAD_ATOL, GRAD_RTOL);
        free(g);
        free(hf);
    }
    safetensors_close(&step1);

    /* Training: restart from the saved weights with PyTorch's optimizer settings. */
    gpt_destroy(m);
    m = gpt_create(&cfg, &opt);
    snprintf(path, sizeof path, "%s/model", dir);
    checkpoint_load(m, path, NULL);
    json_t *losses = json_object_get(ref, "losses"), *norms = json_object_get(ref, "grad_norms");
    size_t steps = json_array_size(losses);
    float *got_loss = malloc(steps * sizeof *got_loss),
          *ref_loss = malloc(steps * sizeof *ref_loss);
    float *got_norm = malloc(steps * sizeof *got_norm),
          *ref_norm = malloc(steps * sizeof *ref_norm);
    for (size_t s = 0; s < steps; s++) {
        float sumsq;
        struct adamw_hparams hp = {
            (float)json_number_value(json_object_get(conf, "lr")),
            (float)json_number_value(json_array_get(json_object_get(conf, "betas"), 0)),
            (float)json_number_value(json_array_get(json_object_get(conf, "betas"), 1)),
            (float)json_number_value(json_object_get(conf, "eps")),
            (float)json_number_value(json_object_get(conf, "weight_decay")),
            (int)s + 1,
            1.0f,
            (float)json_number_value(json_object_get(conf, "grad_clip")),
        };
        loader_batch(&ld, (int64_t)s, in, tg);
        gpt_set_batch(m, in, tg);
        gpt_forward(m);
        gpt_backward(m, 1.0f, 0, 1);
        gpt_update(m, &hp);
        gpt_step_stats(m, &got_loss[s], &sumsq);
        got_norm[s] = sqrtf(sumsq);
        ref_loss[s] = (float)json_number_value(json_array_get(losses, s));
        ref_norm[s] = (float)json_number_value(json_array_get(norms, s));
        printf("     step %zu: loss %.6f (PyTorch %.6f), grad norm %.6f (PyTorch %.6f)\n", s + 1,
               got_loss[s], ref_loss[s], got_norm[s], ref_norm[s]);
    }
    compare("losses", got_loss, ref_loss, steps, LOSS_ATOL, 0);
    compare("grad norms", got_norm, ref_norm, steps, 0, NORM_RTOL);

    gpt_destroy(m);
    loader_free(&ld);
    dataset_close(d);
    rt_shutdown();
    json_decref(ref);
    void *buffers[] = {in, tg, logits, ours, got_loss, ref_loss, got_norm, ref_norm};
    for (size_t k = 0; k < sizeof buffers / sizeof buffers[0]; k++)
        free(buffers[k]);
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
