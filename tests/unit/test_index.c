/* test_index.c: the exact index through its API: argument checks, add /
 * replace / get / remove, search against a brute-force scan for every metric
 * (threshold, exclude, ties), random churn against a model of what the index
 * should hold, batch rebuild, and allocation torture (every allocation made
 * to fail in turn: FL_ERR_NOMEM, index unchanged, no leaks). */
#include "t.h"
#include "core/core.h"
#include "index/index_int.h"

#include <math.h>
#include <stdlib.h>

T_MAIN_STATE;

static void fill(struct fl_rng *r, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(fl_rng_double(r) * 2.0 - 1.0);
}

static void test_new_rejects_bad_args(void)
{
    struct fl_err err = {0};
    T_CHECK(fl_index_new(0, FL_INDEX_L2, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    T_CHECK(fl_index_new(FL_INDEX_DIM_MAX + 1, FL_INDEX_L2, &err) == NULL);
    T_CHECK(fl_index_new(8, (enum fl_index_metric)7, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_INVALID_ARG);
    fl_index_free(NULL);
}

static void test_add_get_replace_remove(void)
{
    struct fl_err err = {0};
    struct fl_index *ix = fl_index_new(3, FL_INDEX_L2, &err);
    float a[3] = {1, 2, 3}, b[3] = {-1, 0.5f, 9}, out[3];
    float bad[3] = {1, NAN, 0}, inf[3] = {INFINITY, 0, 0};
    struct fl_index_hit h[4];
    size_t n = 99;
    T_REQUIRE(ix);
    T_CHECK_EQ_INT(fl_index_dim(ix), 3);
    T_CHECK_EQ_INT(fl_index_metric(ix), FL_INDEX_L2);
    T_CHECK_EQ_INT(fl_index_count(ix), 0);
    T_CHECK_EQ_INT(fl_index_search(ix, a, 4, INFINITY, NULL, h, &n, &err), FL_OK);
    T_CHECK_EQ_INT(n, 0);
    /* ids are opaque: 0 and UINT64_MAX are ordinary */
    T_CHECK_EQ_INT(fl_index_add(ix, 0, a, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_add(ix, UINT64_MAX, b, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_count(ix), 2);
    T_CHECK_EQ_INT(fl_index_get(ix, UINT64_MAX, out, &err), FL_OK);
    T_CHECK(memcmp(out, b, sizeof(b)) == 0);
    T_CHECK_EQ_INT(fl_index_get(ix, 5, out, &err), FL_ERR_NOT_FOUND);
    /* replace keeps the count */
    T_CHECK_EQ_INT(fl_index_add(ix, 0, b, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_count(ix), 2);
    T_CHECK_EQ_INT(fl_index_get(ix, 0, out, &err), FL_OK);
    T_CHECK(memcmp(out, b, sizeof(b)) == 0);
    /* bad vectors and queries */
    T_CHECK_EQ_INT(fl_index_add(ix, 7, bad, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_add(ix, 7, inf, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_search(ix, bad, 1, INFINITY, NULL, h, &n, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_search(ix, a, 0, INFINITY, NULL, h, &n, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_search(ix, a, FL_INDEX_K_MAX + 1, INFINITY, NULL, h, &n, &err),
                   FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_search(ix, a, 1, NAN, NULL, h, &n, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_count(ix), 2);
    /* ties: both ids hold b, so distance ties break by the smaller id */
    T_CHECK_EQ_INT(fl_index_search(ix, a, 4, INFINITY, NULL, h, &n, &err), FL_OK);
    T_REQUIRE(n == 2);
    T_CHECK(h[0].id == 0 && h[1].id == UINT64_MAX);
    T_CHECK(h[0].distance == 4.0f + 2.25f + 36.0f && h[1].distance == h[0].distance);
    /* exclude */
    uint64_t ex = 0;
    T_CHECK_EQ_INT(fl_index_search(ix, a, 4, INFINITY, &ex, h, &n, &err), FL_OK);
    T_CHECK(n == 1 && h[0].id == UINT64_MAX);
    /* threshold */
    T_CHECK_EQ_INT(fl_index_search(ix, a, 4, 42.0f, NULL, h, &n, &err), FL_OK);
    T_CHECK_EQ_INT(n, 0);
    T_CHECK_EQ_INT(fl_index_search(ix, a, 4, 42.25f, NULL, h, &n, &err), FL_OK);
    T_CHECK_EQ_INT(n, 2);
    /* remove */
    T_CHECK_EQ_INT(fl_index_remove(ix, 0, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_remove(ix, 0, &err), FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(err.code, FL_ERR_NOT_FOUND);
    T_CHECK_EQ_INT(fl_index_count(ix), 1);
    T_CHECK_EQ_INT(fl_index_get(ix, UINT64_MAX, out, &err), FL_OK);
    T_CHECK(memcmp(out, b, sizeof(b)) == 0);
    fl_index_free(ix);
}

/* Cosine stores unit vectors and rejects zero ones; IP is negative dot. */
static void test_cosine_and_ip(void)
{
    struct fl_err err = {0};
    struct fl_index *c = fl_index_new(2, FL_INDEX_COSINE, &err);
    struct fl_index *p = fl_index_new(2, FL_INDEX_IP, &err);
    float v[2] = {3, 4}, z[2] = {0, 0}, out[2], q[2] = {10, 0};
    struct fl_index_hit h[1];
    size_t n;
    T_REQUIRE(c && p);
    T_CHECK_EQ_INT(fl_index_add(c, 1, z, &err), FL_ERR_INVALID_ARG);
    {
        float tiny[2] = {1e-45f, 0}, small[2] = {3e-30f, 4e-30f};
        T_CHECK_EQ_INT(fl_index_add(c, 1, tiny, &err), FL_ERR_INVALID_ARG);
        T_CHECK_EQ_INT(fl_index_add(c, 2, small, &err), FL_OK); /* small but normalisable */
        T_CHECK_EQ_INT(fl_index_get(c, 2, out, &err), FL_OK);
        T_CHECK_NEAR(out[0], 0.6, 1e-6);
        T_CHECK_NEAR(out[1], 0.8, 1e-6);
        T_CHECK_EQ_INT(fl_index_remove(c, 2, &err), FL_OK);
    }
    T_CHECK_EQ_INT(fl_index_add(c, 1, v, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_get(c, 1, out, &err), FL_OK);
    T_CHECK_NEAR(out[0], 0.6, 1e-7);
    T_CHECK_NEAR(out[1], 0.8, 1e-7);
    T_CHECK_EQ_INT(fl_index_search(c, z, 1, INFINITY, NULL, h, &n, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_search(c, q, 1, INFINITY, NULL, h, &n, &err), FL_OK);
    T_CHECK(n == 1);
    T_CHECK_NEAR(h[0].distance, 1.0 - 0.6, 1e-6); /* query norm does not matter */
    T_CHECK_EQ_INT(fl_index_add(p, 1, v, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_add(p, 1, z, &err), FL_OK); /* zero is fine for IP */
    T_CHECK_EQ_INT(fl_index_add(p, 2, v, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_search(p, q, 1, INFINITY, NULL, h, &n, &err), FL_OK);
    T_CHECK(n == 1 && h[0].id == 2 && h[0].distance == -30.0f);
    fl_index_free(c);
    fl_index_free(p);
}

/* Brute-force reference: distance of q to every live vector (read back with
 * fl_index_get and measured with the active one-to-one kernel, which the
 * kernel tests tie to the double reference), then sort. */
struct ref {
    size_t n;
    uint64_t *ids;
    float *vecs;
};

static float ref_dist(enum fl_index_metric m, const float *q, const float *v, size_t dim)
{
    const struct fl__index_dist *k = fl__index_dist_active();
    double ss = 0;
    if (m == FL_INDEX_L2)
        return k->l2(q, v, dim);
    if (m == FL_INDEX_IP)
        return 0.0f + -1.0f * k->dot(q, v, dim);
    for (size_t i = 0; i < dim; i++)
        ss += (double)q[i] * q[i];
    return 1.0f + -(float)(1.0 / sqrt(ss)) * k->dot(q, v, dim);
}

static int cmp_hit(const void *pa, const void *pb)
{
    const struct fl_index_hit *a = pa, *b = pb;
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Compare one search with the brute-force answer; returns mismatches. */
static int check_search(struct fl_index *ix, const struct ref *rf, const float *q, size_t k,
                        float maxd, const uint64_t *ex)
{
    size_t dim = fl_index_dim(ix), n_got = 0, n_want = 0;
    struct fl_index_hit *all = fl_malloc(sizeof(*all) * (rf->n + 1));
    struct fl_index_hit *got = fl_malloc(sizeof(*got) * k);
    float *v = fl_malloc(sizeof(float) * dim);
    int bad = 0;
    FL_ASSERT(all && got && v);
    for (size_t i = 0; i < rf->n; i++) {
        if (ex && rf->ids[i] == *ex)
            continue;
        FL_ASSERT(fl_index_get(ix, rf->ids[i], v, NULL) == FL_OK);
        all[n_want].id = rf->ids[i];
        all[n_want].distance = ref_dist(fl_index_metric(ix), q, v, dim);
        n_want++;
    }
    qsort(all, n_want, sizeof(*all), cmp_hit);
    {
        size_t lim = 0;
        while (lim < n_want && lim < k && all[lim].distance <= maxd)
            lim++;
        n_want = lim;
    }
    if (fl_index_search(ix, q, k, maxd, ex, got, &n_got, NULL) != FL_OK)
        bad++;
    bad += n_got != n_want;
    for (size_t i = 0; i < n_got && i < n_want; i++)
        bad += got[i].id != all[i].id || got[i].distance != all[i].distance;
    fl_free(all);
    fl_free(got);
    fl_free(v);
    return bad;
}

/* Search == brute force for each metric, at dims with and without a tail, on
 * more vectors than one chunk holds, with k, threshold and exclude varied. */
static void test_search_vs_brute_force(void)
{
    static const size_t dims[] = {17, 128};
    struct fl_rng r;
    int bad = 0;
    fl_rng_seed(&r, 21);
    for (int m = FL_INDEX_L2; m <= FL_INDEX_COSINE; m++) {
        for (size_t di = 0; di < FL_ARRAY_LEN(dims); di++) {
            size_t dim = dims[di], n = 2600;
            struct ref rf = {.n = n};
            struct fl_index *ix = fl_index_new(dim, (enum fl_index_metric)m, NULL);
            float q[128];
            T_REQUIRE(ix);
            rf.ids = fl_malloc(sizeof(uint64_t) * n);
            rf.vecs = fl_malloc(sizeof(float) * n * dim);
            T_REQUIRE(rf.ids && rf.vecs);
            for (size_t i = 0; i < n; i++)
                rf.ids[i] = fl_rng_next(&r);
            fill(&r, rf.vecs, n * dim);
            /* some exact duplicates so that ties occur */
            memcpy(rf.vecs + 5 * dim, rf.vecs + 7 * dim, dim * sizeof(float));
            T_CHECK_EQ_INT(fl_index_add_batch(ix, rf.ids, rf.vecs, n, NULL), FL_OK);
            T_CHECK_EQ_INT(fl_index_count(ix), n);
            for (int t = 0; t < 12; t++) {
                size_t k = (size_t[]){1, 5, 10, 100, 4096}[t % 5];
                float maxd = INFINITY;
                if (t % 3 == 1) {
                    /* a threshold that keeps some: the distance of a known vector */
                    fill(&r, q, dim);
                    maxd = ref_dist((enum fl_index_metric)m, q, rf.vecs + (size_t)t * dim, dim);
                }
                fill(&r, q, dim);
                if (t % 4 == 3)
                    memcpy(q, rf.vecs + 7 * dim, dim * sizeof(float)); /* query = a vector */
                bad += check_search(ix, &rf, q, k, maxd, NULL);
                bad += check_search(ix, &rf, q, k, maxd, &rf.ids[7]);
            }
            fl_index_free(ix);
            fl_free(rf.ids);
            fl_free(rf.vecs);
        }
    }
    T_CHECK_EQ_INT(bad, 0);
}

/* Model of the index for churn tests: a small id universe, each id absent or
 * holding vector version v (vec(id, v) is deterministic). */
enum { UNIVERSE = 3000, DIM = 19 };

static void model_vec(uint64_t id, unsigned version, float *v)
{
    struct fl_rng r;
    fl_rng_seed(&r, id * 1000003u + version);
    fill(&r, v, DIM);
}

static bool count_visit(void *ctx, uint64_t id, const float *vec)
{
    uint32_t *seen = ctx;
    (void)vec;
    if (id < UNIVERSE)
        seen[id]++;
    else
        seen[UNIVERSE]++;
    return true;
}

/* Everything the index holds matches the model exactly; returns mismatches. */
static int check_model(struct fl_index *ix, const int *ver)
{
    float v[DIM], w[DIM];
    size_t live = 0;
    int bad = 0;
    static uint32_t seen[UNIVERSE + 1]; /* not heap: the torture test counts allocations */
    memset(seen, 0, sizeof(seen));
    for (uint64_t id = 0; id < UNIVERSE; id++) {
        enum fl_status rc = fl_index_get(ix, id, v, NULL);
        if (ver[id] < 0) {
            bad += rc != FL_ERR_NOT_FOUND;
            continue;
        }
        live++;
        model_vec(id, (unsigned)ver[id], w);
        bad += rc != FL_OK || memcmp(v, w, sizeof(v)) != 0;
    }
    bad += fl_index_count(ix) != live;
    bad += fl_index_foreach(ix, count_visit, seen) != live;
    for (size_t id = 0; id <= UNIVERSE; id++)
        bad += seen[id] != (id < UNIVERSE && ver[id] >= 0 ? 1u : 0u);
    return bad;
}

/* Random add / replace / remove / batch against the model, crossing chunk
 * boundaries up and down (swap-remove and chunk release). */
static void test_churn_matches_model(void)
{
    int *ver = fl_malloc(sizeof(int) * UNIVERSE);
    struct fl_index *ix = fl_index_new(DIM, FL_INDEX_L2, NULL);
    struct fl_rng r;
    int bad = 0;
    size_t mem_full, mem_empty;
    T_REQUIRE(ver && ix);
    for (size_t i = 0; i < UNIVERSE; i++)
        ver[i] = -1;
    fl_rng_seed(&r, 31);
    for (int round = 0; round < 6; round++) {
        for (int op = 0; op < 4000; op++) {
            uint64_t id = fl_rng_next(&r) % UNIVERSE;
            float v[DIM];
            /* rounds alternate between growing and shrinking */
            bool add = (fl_rng_next(&r) % 10) < (round % 2 ? 2u : 8u);
            if (add) {
                unsigned nv = (unsigned)(fl_rng_next(&r) % 5);
                model_vec(id, nv, v);
                bad += fl_index_add(ix, id, v, NULL) != FL_OK;
                ver[id] = (int)nv;
            } else {
                enum fl_status rc = fl_index_remove(ix, id, NULL);
                bad += rc != (ver[id] >= 0 ? FL_OK : FL_ERR_NOT_FOUND);
                ver[id] = -1;
            }
        }
        bad += check_model(ix, ver);
    }
    /* batch with repeated ids: the last one wins */
    {
        uint64_t ids[3] = {4, 4, 9};
        float vs[3 * DIM];
        model_vec(4, 1, vs);
        model_vec(4, 2, vs + DIM);
        model_vec(9, 3, vs + 2 * DIM);
        bad += fl_index_add_batch(ix, ids, vs, 3, NULL) != FL_OK;
        ver[4] = 2;
        ver[9] = 3;
        bad += check_model(ix, ver);
    }
    /* all or nothing: a batch with one bad vector changes nothing */
    {
        uint64_t ids[2] = {100, 101};
        float vs[2 * DIM];
        model_vec(100, 4, vs);
        model_vec(101, 4, vs + DIM);
        vs[DIM + 3] = NAN;
        bad += fl_index_add_batch(ix, ids, vs, 2, NULL) != FL_ERR_INVALID_ARG;
        bad += check_model(ix, ver);
    }
    /* memory goes back down when the index empties */
    for (uint64_t id = 0; id < UNIVERSE; id++) {
        float v[DIM];
        model_vec(id, 0, v);
        bad += fl_index_add(ix, id, v, NULL) != FL_OK;
    }
    mem_full = fl_index_memory_bytes(ix);
    for (uint64_t id = 0; id < UNIVERSE; id++)
        bad += fl_index_remove(ix, id, NULL) != FL_OK;
    mem_empty = fl_index_memory_bytes(ix);
    printf("# memory: %zu bytes with %d vectors, %zu empty\n", mem_full, UNIVERSE, mem_empty);
    /* 3000 rows fill three 1024-row chunks; empty keeps one spare */
    T_CHECK(mem_empty + 2 * 1024 * 32 * sizeof(float) <= mem_full);
    T_CHECK_EQ_INT(fl_index_count(ix), 0);
    T_CHECK_EQ_INT(bad, 0);
    fl_index_free(ix);
    fl_free(ver);
}

/* Allocation torture: a scenario of new, adds, a batch that grows the map
 * and the chunks, a search, removes and more adds, run with the n-th
 * allocation failing for n = 1, 2, ... until it completes. Every failure
 * must be FL_ERR_NOMEM, leave the index matching the model, and leak
 * nothing after fl_index_free. */
static enum fl_status scenario(int *ver, int *bad)
{
    struct fl_err err = {0};
    struct fl_index *ix = NULL;
    enum fl_status rc = FL_OK, first = FL_OK;
    float v[DIM];
    struct fl_index_hit h[8];
    size_t n;
    uint64_t *ids = fl_malloc(sizeof(uint64_t) * 1500);
    float *vs = fl_malloc(sizeof(float) * 1500 * DIM);
    for (size_t i = 0; i < UNIVERSE; i++)
        ver[i] = -1;
    if (!ids || !vs) {
        first = FL_ERR_NOMEM;
        goto out;
    }
    ix = fl_index_new(DIM, FL_INDEX_L2, &err);
    if (!ix) {
        *bad += err.code != FL_ERR_NOMEM;
        first = FL_ERR_NOMEM;
        goto out;
    }
    for (uint64_t id = 0; id < 40; id++) {
        model_vec(id, 0, v);
        rc = fl_index_add(ix, id, v, NULL);
        if (rc == FL_OK)
            ver[id] = 0;
        else if (first == FL_OK)
            first = rc;
    }
    for (size_t i = 0; i < 1500; i++) {
        ids[i] = 20 + i; /* overlaps 20..39: replacements */
        model_vec(ids[i], 1, vs + i * DIM);
    }
    rc = fl_index_add_batch(ix, ids, vs, 1500, NULL);
    if (rc == FL_OK) {
        for (size_t i = 0; i < 1500; i++)
            ver[ids[i]] = 1;
    } else if (first == FL_OK) {
        first = rc;
    }
    *bad += check_model(ix, ver);
    model_vec(3, 0, v);
    *bad += fl_index_search(ix, v, 8, INFINITY, NULL, h, &n, NULL) != FL_OK;
    for (uint64_t id = 0; id < 1600; id += 2) {
        rc = fl_index_remove(ix, id, NULL);
        *bad += rc != (ver[id] >= 0 ? FL_OK : FL_ERR_NOT_FOUND);
        ver[id] = -1;
    }
    for (uint64_t id = 1600; id < 2700; id++) {
        model_vec(id, 2, v);
        rc = fl_index_add(ix, id, v, NULL);
        if (rc == FL_OK)
            ver[id] = 2;
        else if (first == FL_OK)
            first = rc;
    }
    *bad += check_model(ix, ver);
out:
    fl_index_free(ix);
    fl_free(ids);
    fl_free(vs);
    return first;
}

static void test_alloc_torture(void)
{
    int *ver = fl_malloc(sizeof(int) * UNIVERSE);
    long base, runs = 0;
    int bad = 0;
    T_REQUIRE(ver);
    base = fl_alloc_live();
    for (long n = 1;; n++) {
        enum fl_status rc;
        fl_test_fail_alloc_at(n);
        rc = scenario(ver, &bad);
        if (fl_test_injected() == 0) {
            T_CHECK_EQ_INT(rc, FL_OK);
            break;
        }
        fl_test_fail_alloc_at(0);
        runs++;
        if (rc != FL_ERR_NOMEM) {
            printf("# fail at %ld: status %d\n", n, (int)rc);
            bad++;
        }
        if (fl_alloc_live() != base) {
            printf("# fail at %ld: %ld allocations leaked\n", n, fl_alloc_live() - base);
            bad++;
        }
    }
    fl_test_fail_alloc_at(0);
    printf("# %ld failing runs checked\n", runs);
    T_CHECK(runs > 5);
    T_CHECK_EQ_INT(bad, 0);
    T_CHECK_EQ_INT(fl_alloc_live(), base);
    fl_free(ver);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    T_RUN(test_new_rejects_bad_args);
    T_RUN(test_add_get_replace_remove);
    T_RUN(test_cosine_and_ip);
    T_RUN(test_search_vs_brute_force);
    T_RUN(test_churn_matches_model);
    T_RUN(test_alloc_torture);
    return t_done();
}
