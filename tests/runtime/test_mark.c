/* test_mark.c: rt_mark_ended_s is when the last task submitted under the mark ended, not when it
 * was submitted nor when later tasks ended. Three tasks in a chain on one tensor, each writing
 * its start and end time into its slot: the first two under the mark, the third after it closed;
 * the mark must end at the second task's recorded end, before the third task started. A mark
 * without tasks ends at its beginning. */
#include <string.h>
#include <time.h>

#include "rt.h"
#include "timer.h"
#include "../test_expect.h"

enum { SLOTS = 3 };

struct times {
    double start[SLOTS], end[SLOTS];
};

static void stamp_cpu(void *buffers[], void *cl_arg)
{
    int slot = *(const int *)cl_arg;
    struct times *t = RT_PTR(buffers, 0);
    t->start[slot] = timer_now_s();
    nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    t->end[slot] = timer_now_s();
}

static struct starpu_codelet stamp_cl = {
    .cpu_funcs = {stamp_cpu},
    .nbuffers = 1,
    .modes = {STARPU_RW},
    .name = "stamp",
};

static void stamp(struct tensor *t, int slot)
{
    struct rt_buf b = {t, RT_RW};
    rt_submit(&stamp_cl, "stamp", &b, 1, &slot, sizeof slot, 0, RT_PRIO_NORMAL, RT_WHERE_CPU);
}

int main(void)
{
    setenv("STARPU_NCUDA", "0", 1);
    rt_init(&(struct rt_options){.quiet = 1});
    struct tensor t;
    size_t floats = (sizeof(struct times) + sizeof(float) - 1) / sizeof(float);
    tensor_init(&t, "times", TENSOR_TYPE_FP32, floats, TENSOR_HOST_PAGEABLE);

    double before = timer_now_s();
    rt_mark_begin();
    stamp(&t, 0);
    stamp(&t, 1);
    rt_mark_end();
    stamp(&t, 2);
    rt_wait_all();
    double ended = rt_mark_ended_s();
    struct times got;
    memcpy(&got, tensor_acquire_read(&t), sizeof got);
    tensor_release(&t);
    EXPECT(got.end[0] <= got.start[1] && got.end[1] <= got.start[2], "the chain ran in order");
    EXPECT(ended >= got.end[1] && ended >= before,
           "the mark ended at %.6f s, before the second "
           "marked task's end %.6f s",
           ended, got.end[1]);
    EXPECT(ended <= got.start[2],
           "the mark ended at %.6f s, after the unmarked task's start "
           "%.6f s: it waited for a task submitted after rt_mark_end",
           ended, got.start[2]);

    double empty_begin = timer_now_s();
    rt_mark_begin();
    rt_mark_end();
    stamp(&t, 0);
    rt_wait_all();
    double empty = rt_mark_ended_s();
    EXPECT(empty >= empty_begin, "an empty mark ended at %.6f s, before its beginning %.6f s",
           empty, empty_begin);
    memcpy(&got, tensor_acquire_read(&t), sizeof got);
    tensor_release(&t);
    EXPECT(empty <= got.start[0],
           "an empty mark ended at %.6f s, after a later task's start %.6f s", empty, got.start[0]);

    tensor_free(&t);
    rt_shutdown();
    return test_finish("test_mark");
}
