/* test_index_topk.c: the bounded top-k selector against a brute-force sort of
 * all candidates, with many tied distances (ties must break by id), with and
 * without a threshold, for k from 1 to FL_INDEX_K_MAX. */
#include "t.h"
#include "core/core.h"
#include "index/index_int.h"

#include <math.h>
#include <stdlib.h>

T_MAIN_STATE;

static int cmp_hit(const void *pa, const void *pb)
{
    const struct fl_index_hit *a = pa, *b = pb;
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* One trial: n candidates with distinct random ids, distances quantised to
 * `levels` values so that ties are common; compare selector vs qsort. */
static int trial(struct fl_rng *r, size_t n, size_t k, float max_distance, unsigned levels)
{
    struct fl_index_hit *all = fl_malloc(sizeof(*all) * n);
    struct fl_index_hit *got = fl_malloc(sizeof(*got) * k);
    struct fl__index_topk t;
    size_t n_want = 0, n_got;
    int bad = 0;
    FL_ASSERT(all && got);
    fl__index_topk_init(&t, got, k, max_distance);
    for (size_t i = 0; i < n; i++) {
        /* distinct ids: a random high part plus the index */
        all[i].id = (fl_rng_next(r) & ~(uint64_t)0xfffff) | i;
        all[i].distance = (float)(fl_rng_next(r) % levels) * 0.25f - 3.0f;
        fl__index_topk_push(&t, all[i].id, all[i].distance);
    }
    n_got = fl__index_topk_finish(&t);
    qsort(all, n, sizeof(*all), cmp_hit);
    while (n_want < n && n_want < k && all[n_want].distance <= max_distance)
        n_want++;
    if (n_got != n_want)
        bad++;
    for (size_t i = 0; i < n_want && i < n_got; i++)
        bad += got[i].id != all[i].id || got[i].distance != all[i].distance;
    fl_free(all);
    fl_free(got);
    return bad;
}

static void test_topk_vs_sort(void)
{
    struct fl_rng r;
    static const size_t ks[] = {1, 2, 3, 10, 64, 100, 1000, FL_INDEX_K_MAX};
    static const size_t ns[] = {0, 1, 5, 100, 5000, 20000};
    int bad = 0;
    fl_rng_seed(&r, 11);
    for (size_t ki = 0; ki < FL_ARRAY_LEN(ks); ki++) {
        for (size_t ni = 0; ni < FL_ARRAY_LEN(ns); ni++) {
            bad += trial(&r, ns[ni], ks[ki], INFINITY, 7);      /* heavy ties */
            bad += trial(&r, ns[ni], ks[ki], INFINITY, 100000); /* few ties */
            bad += trial(&r, ns[ni], ks[ki], -2.0f, 40);        /* threshold cuts */
            bad += trial(&r, ns[ni], ks[ki], -3.5f, 40);        /* threshold keeps none */
        }
    }
    T_CHECK_EQ_INT(bad, 0);
}

/* NaN distances are never kept; the bound follows the worst kept hit. */
static void test_topk_nan_and_bound(void)
{
    struct fl_index_hit h[2];
    struct fl__index_topk t;
    fl__index_topk_init(&t, h, 2, 10.0f);
    T_CHECK(fl__index_topk_bound(&t) == 10.0f);
    fl__index_topk_push(&t, 1, NAN);
    fl__index_topk_push(&t, 2, 11.0f);
    T_CHECK_EQ_INT(t.n, 0);
    fl__index_topk_push(&t, 3, 5.0f);
    fl__index_topk_push(&t, 4, 7.0f);
    T_CHECK(fl__index_topk_bound(&t) == 7.0f);
    fl__index_topk_push(&t, 0, 7.0f); /* same distance, smaller id: replaces 4 */
    T_CHECK_EQ_INT(fl__index_topk_finish(&t), 2);
    T_CHECK_EQ_INT(h[0].id, 3);
    T_CHECK_EQ_INT(h[1].id, 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_topk_vs_sort);
    T_RUN(test_topk_nan_and_bound);
    return t_done();
}
