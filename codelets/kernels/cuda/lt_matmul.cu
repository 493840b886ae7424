/* lt_matmul.cu: the cached row-major cuBLASLt product of lt_matmul.cuh.
 *
 * Descriptors live on the stack (cuBLASLt's *Init functions, no heap) and are rebuilt per call:
 * that costs well under a microsecond, against tens for the heuristic and Create/Destroy pairs of
 * the uncached path, and needs no lock around the per-call pointers (bias, aux) that a shared
 * cached descriptor would. What the cache keeps is the heuristic's answer. */
#include <mutex>
#include <string.h>

#include "lt_matmul.cuh"

namespace
{

/* Everything the heuristic's answer depends on. Compared with memcmp: built zeroed. */
struct lt_key {
    int device;
    int transA, transB, M, N, K, lda, ldb, ldd, ldaux;
    int ab, d, bias_type, epilogue, beta_zero;
    unsigned align_a, align_b, align_d, align_bias, align_aux;
    size_t workspace_bytes;
};

struct lt_slot {
    bool used, found;
    lt_key key;
    cublasLtMatmulAlgo_t algo;
};

/* Open addressing; a model has a few dozen distinct products per dtype. When full, products not
 * yet seen ask the heuristic on every call (correct, only slower). */
#define LT_CACHE_SLOTS 1024
lt_slot lt_cache[LT_CACHE_SLOTS];
std::mutex lt_cache_mutex;

size_t lt_key_hash(const lt_key &k)
{
    const unsigned char *p = (const unsigned char *)&k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof k; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return (size_t)(h % LT_CACHE_SLOTS);
}

/* The slot holding k, or the empty slot where it would go, or NULL (full). Under the mutex. */
lt_slot *lt_cache_find(const lt_key &k)
{
    size_t h = lt_key_hash(k);
    for (int i = 0; i < LT_CACHE_SLOTS; i++) {
        lt_slot *s = &lt_cache[(h + i) % LT_CACHE_SLOTS];
        if (!s->used || memcmp(&s->key, &k, sizeof k) == 0) return s;
    }
    return NULL;
}

/* The operation and layouts of one call. cuBLASLt is column-major, so it computes
 * D^T[N,M] = op(B)^T . op(A)^T: its A is our B and its B our A, transpose flags unchanged. */
struct lt_desc {
    cublasLtMatmulDescOpaque_t op;
    cublasLtMatrixLayoutOpaque_t a, b, d;
};

void lt_desc_init(lt_desc *s, const lt_matmul *g)
{
    CUBLAS_CHECK(cublasLtMatmulDescInit(&s->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = g->transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t tb = g->transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(&s->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(&s->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (g->epilogue != CUBLASLT_EPILOGUE_DEFAULT)
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(&s->op, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                    &g->epilogue, sizeof g->epilogue));
    if (g->bias) {
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(&s->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &g->bias, sizeof g->bias));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(&s->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                    &g->bias_type, sizeof g->bias_type));
    }
    if (g->aux) {
        int64_t ld = g->ldaux;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            &s->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &g->aux, sizeof g->aux));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(&s->op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD,
                                                    &ld, sizeof ld));
    }
    CUBLAS_CHECK(g->transB ? cublasLtMatrixLayoutInit(&s->a, g->ab, g->K, g->N, g->ldb)
                           : cublasLtMatrixLayoutInit(&s->a, g->ab, g->N, g->K, g->ldb));
    CUBLAS_CHECK(g->transA ? cublasLtMatrixLayoutInit(&s->b, g->ab, g->M, g->K, g->lda)
                           : cublasLtMatrixLayoutInit(&s->b, g->ab, g->K, g->M, g->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutInit(&s->d, g->d, g->N, g->M, g->ldd));
}

/* Asks the heuristic for k's best algorithm; false when there is none. The alignments it may
 * assume are the actual pointers' (tensors carved from larger buffers, tiles' column offsets). */
bool lt_heuristic(cublasLtHandle_t lt, lt_desc *s, const lt_key &k, cublasLtMatmulAlgo_t *algo)
{
    /* cuBLASLt's rule for the GELU buffer, checked here rather than by a failing call */
    if (k.ldaux % 8 != 0) return false;
    cublasLtMatmulPreferenceOpaque_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceInit(&pref));
    size_t ws = k.workspace_bytes;
    /* split-K partials, if any, in fp32: never rounded to a 16-bit output type */
    uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    const struct {
        cublasLtMatmulPreferenceAttributes_t attr;
        const void *v;
        size_t size;
    } prefs[] = {
        {CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws},
        {CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof schemes},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &k.align_b, sizeof k.align_b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &k.align_a, sizeof k.align_a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &k.align_d, sizeof k.align_d},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &k.align_d, sizeof k.align_d},
    };
    for (size_t i = 0; i < sizeof prefs / sizeof prefs[0]; i++)
        CUBLAS_CHECK(
            cublasLtMatmulPreferenceSetAttribute(&pref, prefs[i].attr, prefs[i].v, prefs[i].size));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, &s->op, &s->a, &s->b, &s->d, &s->d,
                                                       &pref, 1, &heur, &found);
    /* an epilogue or type pair this cuBLASLt lacks answers NOT_SUPPORTED or INVALID_VALUE */
    if (st == CUBLAS_STATUS_NOT_SUPPORTED || st == CUBLAS_STATUS_INVALID_VALUE) return false;
    CUBLAS_CHECK(st);
    if (found < 1 || heur.workspaceSize > ws) return false;
    *algo = heur.algo;
    return true;
}

} // namespace

bool lt_matmul_run(cublasLtHandle_t lt, const struct lt_matmul *g, void *workspace,
                   size_t workspace_bytes, cudaStream_t stream)
{
    lt_key k;
    memset(&k, 0, sizeof k);
    CUDA_CHECK(cudaGetDevice(&k.device));
    k.transA = g->transA;
    k.transB = g->transB;
    k.M = g->M;
    k.N = g->N;
    k.K = g->K;
    k.lda = g->lda;
    k.ldb = g->ldb;
    k.ldd = g->ldd;
    k.ldaux = g->aux ? g->ldaux : 0;
    k.ab = g->ab;
    k.d = g->d;
    k.bias_type = g->bias ? g->bias_type : 0;
    k.epilogue = g->epilogue;
    k.beta_zero = g->beta == 0.0f;
    k.align_a = ptr_alignment(g->A);
    k.align_b = ptr_alignment(g->B);
    k.align_d = ptr_alignment(g->D);
    k.align_bias = g->bias ? ptr_alignment(g->bias) : 0;
    k.align_aux = g->aux ? ptr_alignment(g->aux) : 0;
    k.workspace_bytes = workspace ? workspace_bytes : 0;

    lt_desc s;
    lt_desc_init(&s, g);
    cublasLtMatmulAlgo_t algo;
    bool found, cached = false;
    {
        std::lock_guard<std::mutex> lock(lt_cache_mutex);
        lt_slot *slot = lt_cache_find(k);
        if (slot && slot->used) {
            cached = true;
            found = slot->found;
            algo = slot->algo;
        }
    }
    if (!cached) {
        /* outside the lock: two threads may both ask, and both get the same answer */
        found = lt_heuristic(lt, &s, k, &algo);
        std::lock_guard<std::mutex> lock(lt_cache_mutex);
        lt_slot *slot = lt_cache_find(k);
        if (slot && !slot->used) {
            slot->key = k;
            slot->found = found;
            if (found) slot->algo = algo;
            slot->used = true;
        }
    }
    if (!found) return false;
    const float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(lt, &s.op, &alpha, g->B, &s.a, g->A, &s.b, &g->beta, g->D, &s.d,
                                g->D, &s.d, &algo, workspace, k.workspace_bytes, stream));
    return true;
}

extern "C" void matmul_cuda_cache_stats(int *problems, int *unfused)
{
    std::lock_guard<std::mutex> lock(lt_cache_mutex);
    *problems = *unfused = 0;
    for (int i = 0; i < LT_CACHE_SLOTS; i++) {
        *problems += lt_cache[i].used;
        *unfused += lt_cache[i].used && !lt_cache[i].found;
    }
}
