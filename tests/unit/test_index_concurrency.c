/* test_index_concurrency.c: readers search, get and iterate while writers add,
 * replace, remove and batch-add on the same index. Built and run under
 * ThreadSanitizer too:
 *   make CC=clang SAN=thread build-thread/tests/test_index_concurrency
 *
 * Self-consistency: every vector ever stored under id is vec(id, v) for a
 * version v in 0..VERSIONS-1, a deterministic function the readers can
 * recompute. So every hit a search returns must have a distance that is bit
 * for bit the kernel distance from the query to one of id's versions (the
 * scan kernel equals the one-to-one kernel exactly, and L2 stores copies), the
 * hits must be sorted by (distance, id) with distinct ids, and a get must
 * return exactly one of the versions. A torn row (a reader seeing half of a
 * write) or a stale slot would break one of these. */
#include "t.h"
#include "core/core.h"
#include "index/index_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

T_MAIN_STATE;

enum { DIM = 24, UNIVERSE = 1500, VERSIONS = 4, READERS = 3, WRITERS = 2 };
enum { WRITER_OPS = 20000, READER_OPS = 400, K = 16 };

static struct fl_index *g_ix;
static atomic_int g_bad;
static atomic_int g_writers_left;

static void vec(uint64_t id, unsigned v, float *out)
{
    struct fl_rng r;
    fl_rng_seed(&r, id * 7919u + v);
    for (size_t i = 0; i < DIM; i++)
        out[i] = (float)(fl_rng_double(&r) * 2.0 - 1.0);
}

/* True if d is exactly the distance from q to one of id's versions. */
static bool plausible(const float *q, uint64_t id, float d)
{
    const struct fl__index_dist *k = fl__index_dist_active();
    float w[DIM];
    if (id >= UNIVERSE)
        return false;
    for (unsigned v = 0; v < VERSIONS; v++) {
        vec(id, v, w);
        if (k->l2(q, w, DIM) == d)
            return true;
    }
    return false;
}

static bool is_version(uint64_t id, const float *got)
{
    float w[DIM];
    for (unsigned v = 0; v < VERSIONS; v++) {
        vec(id, v, w);
        if (memcmp(w, got, sizeof(w)) == 0)
            return true;
    }
    return false;
}

static bool visit_check(void *ctx, uint64_t id, const float *v)
{
    int *bad = ctx;
    *bad += id >= UNIVERSE || !is_version(id, v);
    return true;
}

static void *reader(void *arg)
{
    struct fl_rng r;
    struct fl_index_hit h[K];
    float q[DIM], got[DIM];
    int bad = 0;
    fl_rng_seed(&r, 1000 + (uint64_t)(uintptr_t)arg);
    for (int op = 0; op < READER_OPS || atomic_load(&g_writers_left) > 0; op++) {
        size_t n = 0;
        float maxd = (op % 3 == 0) ? 30.0f : INFINITY;
        uint64_t ex = fl_rng_next(&r) % UNIVERSE;
        for (size_t i = 0; i < DIM; i++)
            q[i] = (float)(fl_rng_double(&r) * 2.0 - 1.0);
        if (fl_index_search(g_ix, q, K, maxd, op % 2 ? &ex : NULL, h, &n, NULL) != FL_OK) {
            bad++;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            bad += !plausible(q, h[i].id, h[i].distance);
            bad += !(h[i].distance <= maxd);
            bad += op % 2 && h[i].id == ex;
            if (i > 0) {
                bool ordered = h[i - 1].distance < h[i].distance ||
                               (h[i - 1].distance == h[i].distance && h[i - 1].id < h[i].id);
                bad += !ordered; /* also rules out duplicate ids */
            }
        }
        if (fl_index_get(g_ix, ex, got, NULL) == FL_OK)
            bad += !is_version(ex, got);
        if (op % 25 == 0)
            fl_index_foreach(g_ix, visit_check, &bad);
        bad += fl_index_count(g_ix) > UNIVERSE;
    }
    atomic_fetch_add(&g_bad, bad);
    return NULL;
}

static void *writer(void *arg)
{
    struct fl_rng r;
    float v[DIM];
    int bad = 0;
    fl_rng_seed(&r, 2000 + (uint64_t)(uintptr_t)arg);
    for (int op = 0; op < WRITER_OPS; op++) {
        uint64_t id = fl_rng_next(&r) % UNIVERSE;
        unsigned what = (unsigned)(fl_rng_next(&r) % 16);
        if (what < 9) {
            vec(id, (unsigned)(fl_rng_next(&r) % VERSIONS), v);
            bad += fl_index_add(g_ix, id, v, NULL) != FL_OK;
        } else if (what < 15) {
            enum fl_status rc = fl_index_remove(g_ix, id, NULL);
            bad += rc != FL_OK && rc != FL_ERR_NOT_FOUND;
        } else {
            uint64_t ids[8];
            float vs[8 * DIM];
            for (int i = 0; i < 8; i++) {
                ids[i] = (id + (uint64_t)i * 97) % UNIVERSE;
                vec(ids[i], (unsigned)i % VERSIONS, vs + i * DIM);
            }
            bad += fl_index_add_batch(g_ix, ids, vs, 8, NULL) != FL_OK;
        }
    }
    atomic_fetch_add(&g_bad, bad);
    atomic_fetch_sub(&g_writers_left, 1);
    return NULL;
}

static void test_readers_and_writers(void)
{
    pthread_t rt[READERS], wt[WRITERS];
    float v[DIM];
    g_ix = fl_index_new(DIM, FL_INDEX_L2, NULL);
    T_REQUIRE(g_ix);
    for (uint64_t id = 0; id < UNIVERSE; id += 2) {
        vec(id, 0, v);
        T_REQUIRE(fl_index_add(g_ix, id, v, NULL) == FL_OK);
    }
    atomic_store(&g_bad, 0);
    atomic_store(&g_writers_left, WRITERS);
    for (uintptr_t i = 0; i < READERS; i++)
        T_REQUIRE(pthread_create(&rt[i], NULL, reader, (void *)i) == 0);
    for (uintptr_t i = 0; i < WRITERS; i++)
        T_REQUIRE(pthread_create(&wt[i], NULL, writer, (void *)i) == 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    printf("# final count %zu, kernels %s\n", fl_index_count(g_ix), fl_index_isa_name());
    T_CHECK_EQ_INT(atomic_load(&g_bad), 0);
    fl_index_free(g_ix);
    g_ix = NULL;
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_readers_and_writers);
    return t_done();
}
