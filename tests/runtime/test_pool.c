/* test_pool.c: the pinned host pool: pieces are AIO_ALIGN-aligned, zeroed, disjoint and counted;
 * a request past the capacity gets NULL; TENSOR_HOST_PINNED tensors come out of the run's pool
 * and leave it with rt_pool_release. On a machine without a GPU the pool is neither pinned nor
 * bound to a NUMA node, which the info says. A pageable tensor's host copy has no page in RAM
 * until tensor_touch_host faults in the range asked (mincore says), and reads zero after. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio.h"
#include "rt.h"
#include "../test_expect.h"

/* Pages of [p, p + bytes) resident in RAM. */
static size_t resident_pages(const void *p, size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (bytes + page - 1) / page, in = 0;
    unsigned char *vec = malloc(n);
    EXPECT(vec && mincore((void *)p, bytes, vec) == 0, "mincore");
    for (size_t i = 0; vec && i < n; i++)
        in += vec[i] & 1;
    free(vec);
    return in;
}

/* tensor_touch_host on a pageable tensor of 16 MiB: nothing resident before, exactly the range
 * asked after (rounded to pages), zeros. */
static void check_touch(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = (size_t)4 << 20, bytes = n * sizeof(float);
    struct tensor t;
    tensor_init(&t, "touched", TENSOR_TYPE_FP32, n, TENSOR_HOST_PAGEABLE);
    EXPECT(resident_pages(t.host, bytes) == 0, "a fresh pageable copy has %zu pages in RAM",
           resident_pages(t.host, bytes));
    tensor_touch_host(&t, (size_t)1 << 20, (size_t)2 << 20);
    size_t first = ((size_t)1 << 20) / page, count = ((size_t)2 << 20) / page;
    EXPECT(resident_pages((char *)t.host + (first * page), count * page) == count,
           "touched range: %zu of %zu pages in RAM",
           resident_pages((char *)t.host + (first * page), count * page), count);
    tensor_touch_host(&t, 0, bytes + 12345); /* clipped at the end */
    EXPECT(resident_pages(t.host, bytes) == bytes / page, "whole copy: %zu of %zu pages in RAM",
           resident_pages(t.host, bytes), bytes / page);
    const float *f = t.host;
    int zero = 1;
    for (size_t i = 0; i < n; i += 1021)
        zero &= f[i] == 0;
    EXPECT(zero && f[n - 1] == 0, "a touched copy reads zero");
    tensor_free(&t);
}

int main(void)
{
    setenv("STARPU_NCUDA", "0", 1);
    rt_init(&(struct rt_options){.quiet = 1});
    char err[256];
    struct host_pool *p = host_pool_create(3 * AIO_ALIGN + 1, err, sizeof err);
    EXPECT(p != NULL, "create: %s", err);
    struct host_pool_info info = host_pool_info(p);
    EXPECT(info.capacity == 4 * AIO_ALIGN && info.used == 0, "capacity %zu used %zu", info.capacity,
           info.used);
    EXPECT(!info.pinned && info.numa_node == -1, "no GPU: pinned %d node %d", info.pinned,
           info.numa_node);
    unsigned char *a = host_pool_alloc(p, 100), *b = host_pool_alloc(p, AIO_ALIGN + 1);
    EXPECT(a && b && (uintptr_t)a % AIO_ALIGN == 0 && (uintptr_t)b % AIO_ALIGN == 0,
           "pieces aligned: %p %p", (void *)a, (void *)b);
    EXPECT(b >= a + AIO_ALIGN, "pieces overlap: %p %p", (void *)a, (void *)b);
    EXPECT(a[0] == 0 && a[99] == 0 && b[AIO_ALIGN] == 0, "pieces are zeroed");
    EXPECT(host_pool_info(p).used == 3 * AIO_ALIGN, "used %zu", host_pool_info(p).used);
    EXPECT(host_pool_alloc(p, 2 * AIO_ALIGN) == NULL, "a piece past the capacity was given");
    EXPECT(host_pool_alloc(p, AIO_ALIGN) != NULL, "the last piece that fits was refused");
    EXPECT(host_pool_piece_bytes(1) == AIO_ALIGN && host_pool_piece_bytes(AIO_ALIGN) == AIO_ALIGN,
           "piece rounding");
    host_pool_destroy(p);

    rt_pool_init(2 * AIO_ALIGN);
    struct tensor t, u;
    tensor_init(&t, "pinned", TENSOR_TYPE_FP32, 1000, TENSOR_HOST_PINNED);
    EXPECT(t.host_kind == TENSOR_HOST_PINNED && rt_pool_info().used == AIO_ALIGN,
           "a pinned tensor takes a piece of the pool: kind %d used %zu", t.host_kind,
           rt_pool_info().used);
    tensor_init(&u, "pageable", TENSOR_TYPE_FP32, 1000, TENSOR_HOST_PAGEABLE);
    EXPECT(u.host_kind == TENSOR_HOST_PAGEABLE && rt_pool_info().used == AIO_ALIGN,
           "a pageable tensor leaves the pool alone");
    tensor_free(&t);
    tensor_free(&u);
    rt_pool_release();
    EXPECT(rt_pool_info().capacity == 0, "the pool is gone after rt_pool_release");
    check_touch();
    rt_shutdown();
    return test_finish("test_pool");
}
