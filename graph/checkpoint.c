/* checkpoint.c: Hugging Face GPT-2 checkpoint directories (see checkpoint.h). */
#include "checkpoint.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fsdir.h"
#include "plan.h"
#include "progress.h"
#include "safetensors.h"

#define TRAINER_FORMAT  "gpt50b-trainer"
#define TRAINER_VERSION 1

static int config_int(json_t *root, const char *path, const char *key)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_integer(v))
        user_fail("%s: \"%s\" is missing or not an integer: is this a GPT-2 config.json?", path,
                  key);
    return (int)json_integer_value(v);
}

void checkpoint_read_config(const char *dir, struct gpt_config *cfg)
{
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        user_fail("%s: %s (line %d): --load needs a directory written by save_pretrained or --save",
                  path, jerr.text, jerr.line);
    cfg->V = config_int(root, path, "vocab_size");
    cfg->C = config_int(root, path, "n_embd");
    cfg->L = config_int(root, path, "n_layer");
    cfg->NH = config_int(root, path, "n_head");
    cfg->maxT = config_int(root, path, "n_positions");
    json_t *eps = json_object_get(root, "layer_norm_epsilon");
    if (eps && fabs(json_number_value(eps) - 1e-5) > 1e-9)
        user_fail("%s: layer_norm_epsilon %g is not supported: the model uses 1e-5", path,
                  json_number_value(eps));
    const char *act = json_string_value(json_object_get(root, "activation_function"));
    if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
        user_fail("%s: activation_function \"%s\" is not supported: the model uses GPT-2's "
                  "tanh GELU (gelu_new)",
                  path, act);
    json_t *inner = json_object_get(root, "n_inner");
    if (json_is_integer(inner) && json_integer_value(inner) != 4 * cfg->C)
        user_fail("%s: n_inner %lld is not supported: the MLP is 4 x n_embd", path,
                  (long long)json_integer_value(inner));
    json_decref(root);
}

static int is_ignored_tensor(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "lm_head.weight") == 0 ||
           (n > 9 && strcmp(name + n - 9, ".attn.bias") == 0) ||
           (n > 16 && strcmp(name + n - 16, ".attn.masked_bias") == 0);
}

static int is_model_tensor(const struct model_table *tab, const char *name)
{
    for (int i = 0; i < tab->n; i++) {
        const char *ours = tab->params[i].name;
        if (strcmp(ours, name) == 0 || strcmp(ours + strlen("transformer."), name) == 0) return 1;
    }
    return 0;
}

static const struct safetensors_tensor *find_weight(const struct safetensors_file *f,
                                                    const char *name)
{
    const struct safetensors_tensor *t = safetensors_find(f, name);
    /* GPT2Model (no LM head) saves without the "transformer." prefix. */
    if (!t && strncmp(name, "transformer.", 12) == 0) t = safetensors_find(f, name + 12);
    return t;
}

/* Copies a checkpoint tensor (any float dtype, HF layout) into an fp32 buffer in our layout. */
static void load_tensor(const struct gpt_param *p, const struct safetensors_tensor *t, float *dst,
                        const char *path)
{
    int64_t want[2];
    enum dtype dt;
    model_param_hf_shape(p, want);
    int ok =
        t->ndim == p->ndim && t->shape[0] == want[0] && (p->ndim == 1 || t->shape[1] == want[1]);
    if (!ok) {
        char got[128] = "[", exp[64];
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)t->shape[d]);
        if (p->ndim > 1)
            snprintf(exp, sizeof exp, "[%lld, %lld]", (long long)want[0], (long long)want[1]);
        else
            snprintf(exp, sizeof exp, "[%lld]", (long long)want[0]);
        user_fail("%s: tensor %s has shape %s], expected %s: the checkpoint does not match "
                  "config.json",
                  path, p->name, got, exp);
    }
    if (safetensors_dtype_to_dtype(t->dtype, &dt) < 0)
        user_fail("%s: tensor %s has dtype %s: expected F32, F16 or BF16", path, p->name,
                  safetensors_dtype_name(t->dtype));
    size_t n = t->numel;
    float *tmp = malloc(n * sizeof *tmp);
    CHECK(tmp);
    dtype_to_f32(dt, t->data, tmp, n);
    size_t rows = (size_t)want[0], cols = (size_t)want[1];
    if (p->conv1d) {
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                dst[j * rows + i] = tmp[i * cols + j];
    } else {
        memcpy(dst, tmp, n * sizeof *tmp);
        size_t ours = (size_t)(p->shape[0] * p->shape[1]);
        memset(dst + n, 0, (ours - n) * sizeof *dst); /* padded vocabulary rows */
    }
    free(tmp);
}

/* Loads fp32 tensor `name` of f, which must hold exactly the elements of tensor i, into its
 * optimizer state `which`. */
static void load_state(struct state *s, int i, enum state_kind which,
                       const struct safetensors_file *f, const char *name, const char *path)
{
    size_t n = model_param_numel(&state_table(s)->params[i]);
    const struct safetensors_tensor *t = safetensors_find(f, name);
    if (!t || t->dtype != SAFETENSORS_F32 || t->numel != n)
        user_fail("%s: tensor %s is missing or is not fp32 with %zu elements: the optimizer state "
                  "does not match the model",
                  path, name, n);
    float *view = state_acquire(s, i, which, 1);
    memcpy(view, t->data, t->nbytes);
    state_release(s, i, which, view, 1);
}

/* Integer `key` of the trainer state, which must lie in [min, max]. */
static int64_t state_int(json_t *root, const char *path, const char *key, int64_t min, int64_t max)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_integer(v))
        user_fail("%s: \"%s\" is missing or not an integer: the trainer state is corrupt; load "
                  "the weights alone by removing trainer_state.json",
                  path, key);
    int64_t x = (int64_t)json_integer_value(v);
    if (x < min || x > max)
        user_fail("%s: \"%s\" is %lld, outside [%lld, %lld]: the trainer state is corrupt; load "
                  "the weights alone by removing trainer_state.json",
                  path, key, (long long)x, (long long)min, (long long)max);
    return x;
}

static void load_trainer_state(const char *dir, struct train_state *st)
{
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        user_fail("%s: %s: the trainer state is corrupt; load the weights alone by removing it",
                  path, jerr.text);
    const char *format = json_string_value(json_object_get(root, "format"));
    json_t *version = json_object_get(root, "version");
    if (!format || strcmp(format, TRAINER_FORMAT) != 0 || !json_is_integer(version) ||
        json_integer_value(version) != TRAINER_VERSION)
        user_fail("%s: not a %s version %d file: it was written by another program or version",
                  path, TRAINER_FORMAT, TRAINER_VERSION);
    st->iteration = state_int(root, path, "iteration", 0, INT64_MAX / 2);
    st->adam_step = state_int(root, path, "adam_step", 0, st->iteration);
    json_t *scale = json_object_get(root, "loss_scale");
    st->scaler.scale = json_number_value(scale);
    if (!json_is_number(scale) || !isfinite(st->scaler.scale) || st->scaler.scale <= 0)
        user_fail("%s: \"loss_scale\" is missing or not a positive number: the trainer state is "
                  "corrupt; load the weights alone by removing trainer_state.json",
                  path);
    st->scaler.hysteresis_left = (int)state_int(root, path, "hysteresis_left", 0, INT32_MAX);
    st->scaler.iter = state_int(root, path, "scaler_iter", 0, INT64_MAX / 2);
    st->scaler.last_overflow_iter =
        state_int(root, path, "last_overflow_iter", -1, st->scaler.iter);
    json_decref(root);
}

int checkpoint_load(struct gpt *m, const char *dir, struct train_state *st)
{
    char path[4096], err[SAFETENSORS_ERR_SIZE], name[160];
    struct state *s = gpt_get_state(m);
    const struct model_table *tab = state_table(s);
    struct safetensors_file f;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (safetensors_open(&f, path, err, sizeof err) < 0) user_fail("%s", err);
    struct progress pr;
    progress_begin(&pr, "reading", "read", "model.safetensors", (int64_t)f.data_size);
    for (int i = 0; i < tab->n; i++) {
        const struct gpt_param *p = &tab->params[i];
        const struct safetensors_tensor *t = find_weight(&f, p->name);
        if (!t)
            user_fail("%s: tensor %s is missing: the file is incomplete or not a GPT-2 model", path,
                      p->name);
        float *view = state_acquire(s, i, STATE_MASTER, 1);
        load_tensor(p, t, view, path);
        state_release(s, i, STATE_MASTER, view, 1);
        progress_add(&pr, (int64_t)t->nbytes);
    }
    progress_end(&pr);
    for (int i = 0; i < f.n_tensors; i++)
        if (!is_ignored_tensor(f.tensors[i].name) && !is_model_tensor(tab, f.tensors[i].name))
            fprintf(stderr, "warning: %s: tensor %s is not part of the model and is ignored\n",
                    path, f.tensors[i].name);
    safetensors_close(&f);
    state_sync_params(s);

    snprintf(path, sizeof path, "%s/optimizer.safetensors", dir);
    if (!st || access(path, F_OK) != 0) return 0;
    if (safetensors_open(&f, path, err, sizeof err) < 0) user_fail("%s", err);
    for (int i = 0; i < tab->n; i++) {
        snprintf(name, sizeof name, "exp_avg.%s", tab->params[i].name);
        load_state(s, i, STATE_EXP_AVG, &f, name, path);
        snprintf(name, sizeof name, "exp_avg_sq.%s", tab->params[i].name);
        load_state(s, i, STATE_EXP_AVG_SQ, &f, name, path);
    }
    safetensors_close(&f);
    load_trainer_state(dir, st);
    return 1;
}

/* Every tensor is written through a fill callback that takes a view of its state when the writer
 * reaches it and lets it go at its end: a save holds one tensor in RAM at a time, wherever the
 * state lives (RAM, or NVMe swap files), and Conv1D weights leave transposed to the [in, out]
 * layout on the fly. */
struct state_fill {
    struct state *s;
    int i;
    enum state_kind which;
    int transpose;
    size_t rows, cols, bytes; /* ours: [rows, cols]; bytes written (HF rows for wte) */
    const float *src;
};

static int fill_state(void *ctx, void *buf, size_t offset, size_t len)
{
    struct state_fill *f = ctx;
    float *out = buf;
    size_t first = offset / sizeof(float), count = len / sizeof(float);
    if (!f->src) f->src = state_acquire(f->s, f->i, f->which, 0);
    if (!f->transpose) {
        memcpy(out, f->src + first, len);
    } else {
        for (size_t k = 0; k < count; k++) {
            size_t e = first + k, i = e / f->rows, j = e % f->rows; /* HF [cols, rows] */
            out[k] = f->src[j * f->cols + i];
        }
    }
    if (offset + len == f->bytes) {
        state_release(f->s, f->i, f->which, (float *)f->src, 0);
        f->src = NULL;
    }
    return 0;
}

static json_t *config_json(const struct gpt_config *c)
{
    return json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:n, s:f, s:s, s:f, s:f, s:f, "
                     "s:f, s:b, s:s}",
                     "architectures", "GPT2LMHeadModel", "model_type", "gpt2", "vocab_size", c->V,
                     "n_embd", c->C, "n_layer", c->L, "n_head", c->NH, "n_positions", c->maxT,
                     "n_ctx", c->maxT, "n_inner", "layer_norm_epsilon", 1e-5, "activation_function",
                     "gelu_new", "resid_pdrop", 0.0, "embd_pdrop", 0.0, "attn_pdrop", 0.0,
                     "initializer_range", 0.02, "tie_word_embeddings", 1, "torch_dtype", "float32");
}

static json_t *trainer_json(const struct train_state *st)
{
    return json_pack("{s:s, s:i, s:I, s:I, s:f, s:i, s:I, s:I}", "format", TRAINER_FORMAT,
                     "version", TRAINER_VERSION, "iteration", (json_int_t)st->iteration,
                     "adam_step", (json_int_t)st->adam_step, "loss_scale", st->scaler.scale,
                     "hysteresis_left", st->scaler.hysteresis_left, "scaler_iter",
                     (json_int_t)st->scaler.iter, "last_overflow_iter",
                     (json_int_t)st->scaler.last_overflow_iter);
}

static int write_json(const char *dir, const char *file, json_t *root, char *err, size_t err_size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    CHECK(text);
    int rc = fs_write_atomic(path, text, strlen(text), err, err_size);
    free(text);
    return rc;
}

static void add_state(struct safetensors_writer *w, struct state_fill *f, const char *name,
                      int ndim, const int64_t *shape)
{
    f->bytes = sizeof(float) * (size_t)shape[0] * (size_t)(ndim > 1 ? shape[1] : 1);
    CHECK(safetensors_writer_add_fill(w, name, SAFETENSORS_F32, ndim, shape, fill_state, f) == 0);
}

/* Writes the files of a checkpoint into tmp, which exists and is empty: the weights, with
 * with_optim the optimizer and trainer state, and config.json last (see is_complete). */
static int write_files(struct state *s, const char *tmp, const struct train_state *st,
                       int with_optim, char *err, size_t err_size)
{
    char path[4096], name[160];
    const struct model_table *tab = state_table(s);
    int n = tab->n, rc;
    struct state_fill *fills = calloc((size_t)n * 3, sizeof *fills);
    struct safetensors_writer model, optim;
    CHECK(fills);
    safetensors_writer_init(&model);
    safetensors_writer_init(&optim);
    safetensors_writer_set_metadata(&model, "format", "pt");
    for (int i = 0; i < n; i++) {
        const struct gpt_param *p = &tab->params[i];
        struct state_fill *f = &fills[i * 3];
        int64_t shape[2];
        model_param_hf_shape(p, shape);
        for (int k = 0; k < 3; k++)
            f[k] = (struct state_fill){s,
                                       i,
                                       (enum state_kind)k,
                                       k == 0 && p->conv1d,
                                       (size_t)p->shape[0],
                                       (size_t)p->shape[1],
                                       0,
                                       NULL};
        add_state(&model, &f[0], p->name, p->ndim, shape);
        if (!with_optim) continue;
        snprintf(name, sizeof name, "exp_avg.%s", p->name);
        add_state(&optim, &f[1], name, p->ndim, p->shape);
        snprintf(name, sizeof name, "exp_avg_sq.%s", p->name);
        add_state(&optim, &f[2], name, p->ndim, p->shape);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    rc = safetensors_writer_write(&model, path, err, err_size);
    if (rc == 0 && with_optim) {
        snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
        rc = safetensors_writer_write(&optim, path, err, err_size);
    }
    for (int k = 0; k < n * 3; k++) /* views left open by a write that failed midway */
        if (fills[k].src) state_release(s, fills[k].i, fills[k].which, (float *)fills[k].src, 0);
    safetensors_writer_free(&model);
    safetensors_writer_free(&optim);
    free(fills);
    if (rc == 0 && with_optim)
        rc = write_json(tmp, "trainer_state.json", trainer_json(st), err, err_size);
    if (rc == 0) rc = write_json(tmp, "config.json", config_json(&tab->cfg), err, err_size);
    return rc;
}

/* Bytes a save writes: the tensors as each file stores them (wte without its padding rows in
 * model.safetensors, with them in the optimizer's layout), and a bound for the rest: a header
 * entry is under 256 bytes, a JSON file under 4 kB, and each file's last block is whole (blocks
 * of up to 64 KiB). */
static int64_t checkpoint_bytes(const struct gpt_config *c, int with_optim)
{
    struct model_table t;
    int64_t bytes = (with_optim ? 4 : 2) * (4096 + 65536);
    model_table_init(&t, c);
    for (int i = 0; i < t.n; i++) {
        const struct gpt_param *p = &t.params[i];
        bytes += 4 * (int64_t)model_param_hf_numel(p) + 256;
        if (with_optim) bytes += 8 * (int64_t)model_param_numel(p) + 2 * 256;
    }
    model_table_free(&t);
    return bytes;
}

/* 0 when the file system that receives dir has room for a checkpoint of c; else -ENOSPC with one
 * line in err. Free space that cannot be read is not checked: the write reports its own error. */
static int check_space(const char *dir, const struct gpt_config *c, int with_optim, char *err,
                       size_t err_size)
{
    char copy[4096], abs[PATH_MAX], need_words[32], free_words[32], e[PLAN_ERR_SIZE];
    struct plan_capacity cap;
    int64_t need = checkpoint_bytes(c, with_optim);
    snprintf(copy, sizeof copy, "%s", dir);
    const char *parent = dirname(copy);
    if (plan_capacity_nvme(&cap, parent, e, sizeof e) != 0 || cap.bytes >= need) return 0;
    plan_bytes_words(need, 1, need_words, sizeof need_words);
    plan_bytes_words(cap.bytes, 1, free_words, sizeof free_words);
    snprintf(err, err_size, "--save %s: the checkpoint needs %s and %s has %s free: %s", dir,
             need_words, realpath(parent, abs) ? abs : parent, free_words,
             with_optim ? "free space, pick another --save folder, or add --no-save-optim"
                        : "free space or pick another --save folder");
    return -ENOSPC;
}

/* The switch. Sets *gone to the folder to remove once it is durable (NULL: none); leaves it as
 * it is on failure. A save writes DIR.tmp.PID to the end, then swaps it with DIR in one
 * renameat2(RENAME_EXCHANGE) and fsyncs the parent folder: DIR is at every instant either the
 * previous complete checkpoint or the new one. The previous one, now at DIR.tmp.PID, is removed
 * last. A crash before the swap leaves an unfinished DIR.tmp.PID, after it the previous
 * checkpoint there: a leftover either way, which the next run on DIR removes (checkpoint_claim).
 * File systems without RENAME_EXCHANGE (EINVAL, e.g. NFS) take two renames, DIR to DIR.old.PID
 * then DIR.tmp.PID to DIR: a crash between them leaves no DIR but two complete checkpoints, and
 * checkpoint_claim moves the newer one back to DIR. The first save is one rename. */
static int switch_in(const char *tmp, const char *dir, const char *old, const char **gone)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        *gone = NULL;
        return rename(tmp, dir) == 0 ? 0 : -errno;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
        *gone = tmp;
        return 0;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return -errno;
    if (rename(dir, old) != 0) return -errno;
    if (rename(tmp, dir) == 0) {
        *gone = old;
        return 0;
    }
    int e = -errno;
    if (rename(old, dir) == 0) return e;
    *gone = NULL; /* no dir, old and tmp both whole: the next run's sweep restores tmp */
    return e;
}

int checkpoint_save(struct gpt *m, const char *dir, const struct train_state *st, int with_optim,
                    char *err, size_t err_size)
{
    char tmp[4096], old[4096], parent[4096];
    struct state *s = gpt_get_state(m);
    if (state_process(s) != 0) { /* process 0 writes; this one lends it its shards */
        int rc = state_serve(s);
        if (rc != 0) snprintf(err, err_size, "process 0 could not save %s: see its message", dir);
        return rc;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", dir, (int)getpid());
    snprintf(old, sizeof old, "%s.old.%d", dir, (int)getpid());
    snprintf(parent, sizeof parent, "%s", dir);
    dirname(parent);
    int rc = check_space(dir, &state_table(s)->cfg, with_optim, err, err_size);
    if (rc != 0) {
        state_serve_end(s, rc);
        return rc;
    }
    fsdir_remove(tmp, NULL, NULL);
    if (mkdir(tmp, 0755) != 0) {
        int e = errno;
        snprintf(err, err_size, "cannot create %s: %s: choose a writable --save directory", tmp,
                 strerror(e));
        state_serve_end(s, -e);
        return -e;
    }
    rc = write_files(s, tmp, st, with_optim, err, err_size);
    const char *gone = tmp; /* the unfinished save, or after the switch the previous checkpoint */
    if (rc == 0 && (rc = switch_in(tmp, dir, old, &gone)) != 0)
        snprintf(err, err_size, "cannot move the checkpoint into %s: %s", dir, strerror(-rc));
    if (rc == 0 && (rc = fsdir_sync(parent)) != 0)
        snprintf(err, err_size,
                 "fsync of %s: %s: the new checkpoint is in %s but may not survive a power loss",
                 parent, strerror(-rc), dir);
    if (gone) fsdir_remove(gone, NULL, NULL);
    state_serve_end(s, rc);
    return rc;
}

/* Whether the checkpoint folder path is whole: config.json, written last, exists (every file is
 * written whole: temporary file, fsync, rename), and so does model.safetensors. */
static int is_complete(const char *path)
{
    char f[4096];
    snprintf(f, sizeof f, "%s/config.json", path);
    if (access(f, F_OK) != 0) return 0;
    snprintf(f, sizeof f, "%s/model.safetensors", path);
    return access(f, F_OK) == 0;
}

/* The folders a save to dir may leave, DIR.tmp.PID and DIR.old.PID: *kind 't' or 'o', *pid. */
static int is_leftover(const char *base, const char *name, char *kind, long *pid)
{
    size_t n = strlen(base);
    int end = 0;
    if (strncmp(name, base, n) != 0) return 0;
    name += n;
    if (strncmp(name, ".tmp.", 5) == 0)
        *kind = 't';
    else if (strncmp(name, ".old.", 5) == 0)
        *kind = 'o';
    else
        return 0;
    return sscanf(name + 5, "%ld%n", pid, &end) == 1 && name[5 + end] == '\0';
}

/* Run under dir's lock: every leftover belongs to a dead run. When dir is missing, the newest
 * complete leftover (a DIR.tmp.PID, else a DIR.old.PID) goes back to dir; the rest are removed.
 * One line on stderr says all that was done. */
static void sweep(const char *dir)
{
    char parent[4096], copy[4096], path[4096], back[4096] = "", line[2048] = "";
    struct stat sb;
    size_t len = 0;
    int nfiles = 0, failed = 0;
    uint64_t nbytes = 0;
    snprintf(parent, sizeof parent, "%s", dir);
    snprintf(copy, sizeof copy, "%s", dir);
    dirname(parent);
    const char *base = basename(copy);
    int missing = stat(dir, &sb) != 0;
    for (int pass = 0; pass < 2; pass++) {
        DIR *dp = opendir(parent);
        if (!dp) return;
        struct dirent *de;
        while ((de = readdir(dp))) {
            char kind;
            long pid;
            if (!is_leftover(base, de->d_name, &kind, &pid) || pid == (long)getpid()) continue;
            snprintf(path, sizeof path, "%s/%s", parent, de->d_name);
            if (pass == 0) { /* the one to restore: a complete new checkpoint beats an old one */
                if (missing && is_complete(path) && (!back[0] || kind == 't'))
                    snprintf(back, sizeof back, "%s", path);
                continue;
            }
            if (strcmp(path, back) == 0) continue;
            int rc = fsdir_remove(path, &nfiles, &nbytes);
            failed |= rc < 0;
            if (len < sizeof line)
                len += snprintf(line + len, sizeof line - len, "%s%s%s", len ? ", " : "",
                                de->d_name, rc < 0 ? " (failed)" : "");
        }
        closedir(dp);
        if (pass == 0 && back[0] && (rename(back, dir) != 0 || fsdir_sync(parent) != 0))
            user_fail("%s is missing and %s holds the last complete checkpoint, but moving it "
                      "back failed (%s): rename it to %s by hand",
                      dir, back, strerror(errno), dir);
    }
    if (!len && !back[0]) return;
    fprintf(stderr, "gpt50b: %s: tidied up after an interrupted save of a run that is gone: ", dir);
    if (back[0]) fprintf(stderr, "%s was missing, restored it from the complete %s", dir, back);
    if (len)
        fprintf(stderr, "%sremoved %s (%d files, %.2f GB)%s", back[0] ? "; " : "", line, nfiles,
                (double)nbytes / 1e9, failed ? ": remove the failed ones by hand" : "");
    fprintf(stderr, "%s\n",
            missing && !back[0] ? "; no complete checkpoint was left"
                                : "; the checkpoint is whole");
}

/* Fails (exit 2) unless --save dir can be made: its parent is a writable folder. */
static void check_parent(const char *dir)
{
    struct stat sb;
    char copy[4096];
    if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
        user_fail("--save %s: exists and is not a directory: choose another path", dir);
    snprintf(copy, sizeof copy, "%s", dir);
    const char *parent = dirname(copy);
    if (stat(parent, &sb) != 0)
        user_fail("--save %s: the directory %s does not exist: create it first", dir, parent);
    if (!S_ISDIR(sb.st_mode))
        user_fail("--save %s: %s is not a directory: choose another path", dir, parent);
    if (access(parent, W_OK | X_OK) != 0)
        user_fail("--save %s: cannot write in %s (%s): choose a writable directory", dir, parent,
                  strerror(errno));
}

static char lock_path[4096];
static int lock_fd = -1;

static void unlock_at_exit(void)
{
    fsdir_unlock(lock_fd, lock_path);
}

void checkpoint_claim(const char *dir, int hold)
{
    char path[4096];
    long holder = 0;
    snprintf(path, sizeof path, "%s.lock", dir);
    if (lock_fd >= 0 && strcmp(path, lock_path) == 0) return; /* held: swept already */
    if (hold) check_parent(dir);
    int fd = fsdir_lock(path, &holder);
    if (fd == -EBUSY && hold)
        user_fail("--save %s: run %ld is using this checkpoint folder (it holds %s): wait for it "
                  "to end or choose another --save folder",
                  dir, holder, path);
    if (fd < 0 && hold)
        user_fail("--save %s: cannot create the lock file %s: %s", dir, path, strerror(-fd));
    if (fd < 0) return; /* another run saves there, or a read-only folder: nothing to tidy */
    sweep(dir);
    if (!hold) {
        fsdir_unlock(fd, path);
        return;
    }
    snprintf(lock_path, sizeof lock_path, "%s", path);
    lock_fd = fd;
    atexit(unlock_at_exit);
}

void checkpoint_check_writable(const char *dir, const struct gpt_config *cfg, int with_optim)
{
    char err[1024];
    check_parent(dir);
    if (check_space(dir, cfg, with_optim, err, sizeof err) != 0) user_fail("%s", err);
}
