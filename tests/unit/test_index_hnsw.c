/* test_index_hnsw.c: the HNSW graph behind fl_index, through the index API.
 *
 * The reference for every recall figure is the same index's exact scan
 * (FL_INDEX_SEARCH_EXACT), itself tested against brute force in test_index.
 * Data: a mixture of Gaussians in 128 dimensions (clustered, like embeddings),
 * fixed seeds. Checks:
 *   - recall@10 of the default parameters >= 0.98 on 20,000 vectors, and the
 *     graph's invariants (fl__hnsw_check: link counts within M / 2M, links in
 *     range, no self or repeated links, every link has its reverse, entry
 *     point on the top level, every node reachable from it);
 *   - the same after deleting half the nodes at random (neighbour repair);
 *   - replace by id, and hits' distances equal the exact scan's bit for bit;
 *   - snapshot: round trip gives identical results and identical bytes,
 *     corruption / truncation / wrong generation, dim or metric rejected
 *     with FL_ERR_CORRUPT, a structurally broken graph with a valid checksum
 *     rejected too;
 *   - small graphs under random churn against a model, all metrics, with the
 *     invariants checked after every operation; graph built at the threshold
 *     and dropped below half of it; same seed, same graph;
 *   - allocation failure during graph writes leaves the index unchanged;
 *   - searches concurrent with inserts, replaces and deletes (also run under
 *     TSan: make CC=clang SAN=thread build-thread/tests/test_index_hnsw). */
#include "t.h"
#include "core/core.h"
#include "index/index_int.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

T_MAIN_STATE;

enum { DIM = 128, N_BIG = 20000, N_CLUSTERS = 20, NQ = 200, K = 10 };

static double gauss(struct fl_rng *r)
{
    double u = fl_rng_double(r), v = fl_rng_double(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* n points of a Gaussian mixture: centres N(0, 1), spread 1 per axis (the
 * clusters overlap: within-cluster distances are half the between-cluster
 * ones, so neighbours are not found by cluster alone). */
static void clustered(struct fl_rng *r, const float *centres, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const float *c = centres + (fl_rng_next(r) % N_CLUSTERS) * DIM;
        for (size_t j = 0; j < DIM; j++)
            out[i * DIM + j] = c[j] + (float)gauss(r);
    }
}

static float *g_centres, *g_base, *g_queries;

static void make_data(void)
{
    struct fl_rng r;
    fl_rng_seed(&r, 20261128);
    g_centres = fl_malloc(sizeof(float) * N_CLUSTERS * DIM);
    g_base = fl_malloc(sizeof(float) * N_BIG * DIM);
    g_queries = fl_malloc(sizeof(float) * NQ * DIM);
    for (size_t i = 0; i < N_CLUSTERS * DIM; i++)
        g_centres[i] = (float)gauss(&r);
    clustered(&r, g_centres, N_BIG, g_base);
    clustered(&r, g_centres, NQ, g_queries);
}

static const struct fl_index_search_opts EXACT = {.mode = FL_INDEX_SEARCH_EXACT};
static const struct fl_index_search_opts APPROX = {.mode = FL_INDEX_SEARCH_APPROX};

/* Mean recall@K of the graph against the exact scan over the queries; also
 * checks that every hit found by both has the same distance bit for bit. */
static double recall_ef(struct fl_index *ix, const float *qs, size_t nq, size_t ef, int *bad_dist)
{
    const struct fl_index_search_opts approx = {.mode = FL_INDEX_SEARCH_APPROX, .ef = ef};
    struct fl_index_hit e[K], a[K];
    size_t ne, na, hit = 0, tot = 0;
    for (size_t i = 0; i < nq; i++) {
        const float *q = qs + i * DIM;
        if (fl_index_search_opt(ix, q, K, INFINITY, NULL, &EXACT, e, &ne, NULL) != FL_OK ||
            fl_index_search_opt(ix, q, K, INFINITY, NULL, &approx, a, &na, NULL) != FL_OK)
            return -1.0;
        for (size_t x = 0; x < ne; x++) {
            for (size_t y = 0; y < na; y++) {
                if (a[y].id == e[x].id) {
                    hit++;
                    if (a[y].distance != e[x].distance)
                        (*bad_dist)++;
                }
            }
        }
        for (size_t y = 1; y < na; y++) {
            if (a[y].distance < a[y - 1].distance)
                (*bad_dist)++;
        }
        tot += ne;
    }
    return tot ? (double)hit / (double)tot : 1.0;
}

/* Same hits (ids and distances; the struct has padding, so no memcmp). */
static bool same_hits(const struct fl_index_hit *a, size_t na, const struct fl_index_hit *b,
                      size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (a[i].id != b[i].id || a[i].distance != b[i].distance)
            return false;
    }
    return true;
}

static double recall(struct fl_index *ix, const float *qs, size_t nq, int *bad_dist)
{
    return recall_ef(ix, qs, nq, 0, bad_dist);
}

static struct fl_index *g_big; /* built by test_recall_build, used by later tests */

static void check_graph(struct fl_index *ix)
{
    struct fl_err err = {0};
    enum fl_status rc = fl__index_check_graph(ix, true, &err);
    T_CHECK_EQ_INT(rc, FL_OK);
    if (rc != FL_OK)
        printf("# %s\n", err.msg);
}

static void test_recall_build(void)
{
    struct fl_err err = {0};
    uint64_t *ids = fl_malloc(sizeof(uint64_t) * N_BIG);
    int bad = 0;
    g_big = fl_index_new(DIM, FL_INDEX_L2, &err);
    T_REQUIRE(g_big && ids);
    for (size_t i = 0; i < N_BIG; i++)
        ids[i] = 1000000 + i * 3;
    /* One batch short of the threshold: no graph yet. */
    T_CHECK_EQ_INT(fl_index_add_batch(g_big, ids, g_base, N_BIG - 1, &err), FL_OK);
    T_CHECK(!fl_index_has_graph(g_big));
    uint64_t t0 = fl_time_mono_ns();
    T_CHECK_EQ_INT(fl_index_add(g_big, ids[N_BIG - 1], g_base + (size_t)(N_BIG - 1) * DIM, &err),
                   FL_OK);
    printf("# graph build for %d x %d: %.2f s\n", N_BIG, DIM,
           (double)(fl_time_mono_ns() - t0) * 1e-9);
    T_REQUIRE(fl_index_has_graph(g_big));
    check_graph(g_big);
    double r = recall(g_big, g_queries, NQ, &bad);
    double r64 = recall_ef(g_big, g_queries, NQ, 64, &bad);
    printf("# recall@%d at default ef %d: %.4f (ef 16: %.4f, 32: %.4f, 64: %.4f)\n", K,
           FL_INDEX_EF_SEARCH_DEFAULT, r, recall_ef(g_big, g_queries, NQ, 16, &bad),
           recall_ef(g_big, g_queries, NQ, 32, &bad), r64);
    T_CHECK(r >= 0.98);
    /* The default ef has headroom; the graph itself must be good enough that
     * a third of it still finds nearly everything. */
    T_CHECK(r64 >= 0.97);
    T_CHECK_EQ_INT(bad, 0);
    /* AUTO uses the graph above the threshold and equals APPROX. */
    struct fl_index_hit a[K], b[K];
    size_t na, nb;
    T_CHECK_EQ_INT(fl_index_search(g_big, g_queries, K, INFINITY, NULL, a, &na, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_search_opt(g_big, g_queries, K, INFINITY, NULL, &APPROX, b, &nb, &err),
                   FL_OK);
    T_CHECK(same_hits(a, na, b, nb));
    /* A query equal to a stored vector finds it first, at distance 0, and
     * exclude skips it. */
    uint64_t ex = ids[77];
    T_CHECK_EQ_INT(fl_index_search(g_big, g_base + 77 * DIM, K, INFINITY, NULL, a, &na, &err),
                   FL_OK);
    T_CHECK(na == K && a[0].id == ids[77] && a[0].distance == 0.0f);
    T_CHECK_EQ_INT(fl_index_search(g_big, g_base + 77 * DIM, K, INFINITY, &ex, b, &nb, &err),
                   FL_OK);
    T_CHECK(nb == K && b[0].id != ex && b[0].id == a[1].id);
    /* Threshold: only hits within it. */
    T_CHECK_EQ_INT(fl_index_search(g_big, g_queries, K, a[0].distance, NULL, b, &nb, &err), FL_OK);
    for (size_t i = 0; i < nb; i++)
        T_CHECK(b[i].distance <= a[0].distance);
    /* k above ef: ef is raised to k. */
    struct fl_index_hit *many = fl_malloc(sizeof(*many) * 300);
    T_CHECK_EQ_INT(fl_index_search(g_big, g_queries, 300, INFINITY, NULL, many, &nb, &err), FL_OK);
    T_CHECK_EQ_INT(nb, 300);
    fl_free(many);
    fl_free(ids);
}

/* A range search (finite max_distance, as SearchFaces with a threshold)
 * starts at ef_range, not ef_search. The range here is each query's exact
 * 5th-nearest distance; the graph at the default ef_range must return the
 * same in-range hits as the scan for nearly every query, and a range search
 * with ef_range 1 (widened only up to k) must do measurably worse, which
 * shows the parameter is the one in use. */
static double range_recall(struct fl_index *ix, size_t *n_in)
{
    struct fl_index_hit e[K], a[K];
    size_t ne, na, hit = 0;
    *n_in = 0;
    for (size_t i = 0; i < NQ; i++) {
        const float *q = g_queries + i * DIM;
        if (fl_index_search_opt(ix, q, K, INFINITY, NULL, &EXACT, e, &ne, NULL) != FL_OK ||
            ne < 5)
            return -1.0;
        float r = e[4].distance;
        if (fl_index_search_opt(ix, q, K, r, NULL, &EXACT, e, &ne, NULL) != FL_OK ||
            fl_index_search(ix, q, K, r, NULL, a, &na, NULL) != FL_OK)
            return -1.0;
        for (size_t x = 0; x < ne; x++) {
            for (size_t y = 0; y < na; y++)
                hit += a[y].id == e[x].id && a[y].distance == e[x].distance;
        }
        *n_in += ne;
    }
    return *n_in ? (double)hit / (double)*n_in : 1.0;
}

static void test_range_ef(void)
{
    struct fl_index_hnsw_params hp;
    size_t n_in;
    fl_index_hnsw_defaults(&hp);
    double r = range_recall(g_big, &n_in);
    hp.ef_range = 1;
    T_REQUIRE(fl_index_set_hnsw(g_big, &hp, NULL) == FL_OK);
    double r1 = range_recall(g_big, &n_in);
    fl_index_hnsw_defaults(&hp);
    T_REQUIRE(fl_index_set_hnsw(g_big, &hp, NULL) == FL_OK);
    printf("# range search (5th-NN radius, %zu hits in range): recall %.4f at ef_range %d, "
           "%.4f at 1\n",
           n_in, r, FL_INDEX_EF_RANGE_DEFAULT, r1);
    T_CHECK(n_in >= 5 * NQ);
    T_CHECK(r >= 0.99);
    T_CHECK(r1 >= 0.0 && r1 < r);
}

static void test_mass_delete(void)
{
    struct fl_err err = {0};
    struct fl_rng r;
    int bad = 0;
    size_t removed = 0;
    T_REQUIRE(g_big);
    fl_rng_seed(&r, 99);
    uint64_t t0 = fl_time_mono_ns();
    for (size_t i = 0; i < N_BIG; i++) {
        if (fl_rng_next(&r) & 1) {
            T_CHECK_EQ_INT(fl_index_remove(g_big, 1000000 + i * 3, &err), FL_OK);
            removed++;
        }
    }
    printf("# removed %zu nodes in %.2f s\n", removed, (double)(fl_time_mono_ns() - t0) * 1e-9);
    T_CHECK_EQ_INT(fl_index_count(g_big), N_BIG - removed);
    /* Above half the threshold the graph stays. */
    T_REQUIRE(fl_index_has_graph(g_big));
    check_graph(g_big);
    double rc = recall(g_big, g_queries, NQ, &bad);
    double r64 = recall_ef(g_big, g_queries, NQ, 64, &bad);
    printf("# recall@%d after deleting %zu of %d: %.4f (ef 64: %.4f)\n", K, removed, N_BIG, rc,
           r64);
    T_CHECK(rc >= 0.98);
    T_CHECK(r64 >= 0.97);
    T_CHECK_EQ_INT(bad, 0);
}

static void test_replace(void)
{
    struct fl_err err = {0};
    struct fl_rng r;
    float *v = fl_malloc(sizeof(float) * DIM), *got = fl_malloc(sizeof(float) * DIM);
    struct fl_index_hit h[K];
    size_t n, before, found = 0, tried = 0;
    int bad = 0;
    T_REQUIRE(g_big && v && got);
    before = fl_index_count(g_big);
    fl_rng_seed(&r, 5);
    /* Replace 500 present ids with fresh points (of other clusters). */
    for (size_t i = 0; i < N_BIG && tried < 500; i += 7) {
        uint64_t id = 1000000 + i * 3;
        if (fl_index_get(g_big, id, got, NULL) != FL_OK)
            continue;
        clustered(&r, g_centres, 1, v);
        T_CHECK_EQ_INT(fl_index_add(g_big, id, v, &err), FL_OK);
        T_CHECK_EQ_INT(fl_index_get(g_big, id, got, &err), FL_OK);
        T_CHECK(memcmp(v, got, sizeof(float) * DIM) == 0);
        T_CHECK_EQ_INT(fl_index_search(g_big, v, K, INFINITY, NULL, h, &n, &err), FL_OK);
        found += n > 0 && h[0].id == id && h[0].distance == 0.0f;
        tried++;
    }
    T_CHECK_EQ_INT(fl_index_count(g_big), before);
    printf("# replaced %zu ids; %zu found at rank 1 by their new vector\n", tried, found);
    T_CHECK(found >= tried * 99 / 100);
    check_graph(g_big);
    double rc = recall(g_big, g_queries, NQ, &bad);
    T_CHECK(rc >= 0.98);
    T_CHECK_EQ_INT(bad, 0);
    fl_free(v);
    fl_free(got);
}

static void test_snapshot(void)
{
    struct fl_err err = {0};
    uint8_t *p = NULL, *p2 = NULL;
    size_t n = 0, n2 = 0;
    struct fl_index *ix;
    T_REQUIRE(g_big);
    T_REQUIRE(fl_index_save_mem(g_big, 4242, &p, &n, &err) == FL_OK);
    uint64_t t0 = fl_time_mono_ns();
    ix = fl_index_load_mem(p, n, DIM, FL_INDEX_L2, 4242, NULL, &err);
    printf("# snapshot %zu bytes, load %.3f s\n", n, (double)(fl_time_mono_ns() - t0) * 1e-9);
    T_REQUIRE(ix);
    T_CHECK(fl_index_has_graph(ix));
    T_CHECK_EQ_INT(fl_index_count(ix), fl_index_count(g_big));
    check_graph(ix);
    /* Identical results for every query, and identical bytes when saved again. */
    int diff = 0;
    for (size_t i = 0; i < NQ; i++) {
        struct fl_index_hit a[K], b[K];
        size_t na, nb;
        fl_index_search(g_big, g_queries + i * DIM, K, INFINITY, NULL, a, &na, NULL);
        fl_index_search(ix, g_queries + i * DIM, K, INFINITY, NULL, b, &nb, NULL);
        diff += !same_hits(a, na, b, nb);
    }
    T_CHECK_EQ_INT(diff, 0);
    T_REQUIRE(fl_index_save_mem(ix, 4242, &p2, &n2, &err) == FL_OK);
    T_CHECK(n2 == n && memcmp(p, p2, n) == 0);
    fl_free(p2);
    fl_index_free(ix);

    /* Through a file. */
    /* in /tmp: the build directory's name depends on the build (SAN=...) */
    char path[64];
    snprintf(path, sizeof(path), "/tmp/fl-test-hnsw-%d.snap", (int)getpid());
    T_CHECK_EQ_INT(fl_index_save(g_big, path, 7, &err), FL_OK);
    ix = fl_index_load(path, DIM, FL_INDEX_L2, 7, NULL, &err);
    T_CHECK(ix != NULL);
    fl_index_free(ix);
    remove(path);
    T_CHECK(fl_index_load(path, DIM, FL_INDEX_L2, 7, NULL, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_NOT_FOUND);

    /* Mismatches and damage. */
    T_CHECK(fl_index_load_mem(p, n, DIM, FL_INDEX_L2, 4243, NULL, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    T_CHECK(fl_index_load_mem(p, n, DIM + 1, FL_INDEX_L2, 4242, NULL, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    T_CHECK(fl_index_load_mem(p, n, DIM, FL_INDEX_IP, 4242, NULL, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    size_t cuts[] = {0, 1, 39, 40, n / 2, n - 33, n - 1};
    for (size_t i = 0; i < FL_ARRAY_LEN(cuts); i++) {
        T_CHECK(fl_index_load_mem(p, cuts[i], DIM, FL_INDEX_L2, 4242, NULL, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    }
    size_t flips[] = {0, 9, 13, 25, 41, n / 3, n - 40, n - 1};
    for (size_t i = 0; i < FL_ARRAY_LEN(flips); i++) {
        p[flips[i]] ^= 0x10;
        T_CHECK(fl_index_load_mem(p, n, DIM, FL_INDEX_L2, 4242, NULL, &err) == NULL);
        T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
        p[flips[i]] ^= 0x10;
    }
    /* A graph that breaks an invariant, with a valid checksum: change the
     * last level-0 link of the last node (just before the checksum) to point
     * at that node itself, then re-sign. */
    uint32_t last = (uint32_t)(fl_index_count(g_big) - 1);
    uint8_t *q = p + n - 36;
    uint32_t old =
        (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    T_CHECK(old < last + 1);
    q[0] = (uint8_t)last;
    q[1] = (uint8_t)(last >> 8);
    q[2] = (uint8_t)(last >> 16);
    q[3] = (uint8_t)(last >> 24);
    fl_sha256(p, n - 32, p + n - 32);
    T_CHECK(fl_index_load_mem(p, n, DIM, FL_INDEX_L2, 4242, NULL, &err) == NULL);
    T_CHECK_EQ_INT(err.code, FL_ERR_CORRUPT);
    fl_free(p);
}

/* ---- small graphs, churn against a model ---- */

enum { SD = 9, UNIV = 400 };

static void small_vec(uint64_t id, unsigned ver, float *out)
{
    struct fl_rng r;
    fl_rng_seed(&r, id * 131 + ver);
    for (size_t i = 0; i < SD; i++)
        out[i] = (float)(fl_rng_double(&r) * 2.0 - 1.0);
}

/* Range search wider than ef (a large k with a finite max_distance, as
 * SearchFaces with its default MaxFaces of 4096 and a threshold): a tight
 * cluster of 300 points around one centre among 3,000 scattered ones, graph
 * with ef_search and ef_range 32. Every cluster point within range is found (ef widened
 * past 32), nothing out of range is returned, and a query with only a few
 * points in range answers them all, as the exact scan does. */
static void test_range_beyond_ef(void)
{
    enum { NR = 3300, NCL = 300, KR = 4096 };
    struct fl_index_hnsw_params hp;
    struct fl_index *ix = fl_index_new(DIM, FL_INDEX_L2, NULL);
    float *v = fl_malloc(sizeof(float) * NR * DIM), centre[DIM];
    struct fl_index_hit *a = fl_malloc(sizeof(*a) * KR), *b = fl_malloc(sizeof(*b) * KR);
    struct fl_index_search_opts exact = {0};
    struct fl_rng r;
    size_t na = 0, nb = 0;
    T_REQUIRE(ix && v && a && b);
    fl_index_hnsw_defaults(&hp);
    hp.threshold = 1000;
    hp.ef_search = hp.ef_range = 32;
    T_REQUIRE(fl_index_set_hnsw(ix, &hp, NULL) == FL_OK);
    fl_rng_seed(&r, 5);
    for (int j = 0; j < DIM; j++)
        centre[j] = (float)gauss(&r);
    for (int i = 0; i < NR; i++) {
        for (int j = 0; j < DIM; j++)
            v[(size_t)i * DIM + j] = i < NCL ? centre[j] + 0.05f * (float)gauss(&r)
                                             : 3.0f * (float)gauss(&r);
        T_REQUIRE(fl_index_add(ix, (uint64_t)i + 1, v + (size_t)i * DIM, NULL) == FL_OK);
    }
    T_REQUIRE(fl_index_has_graph(ix));
    exact.mode = FL_INDEX_SEARCH_EXACT;
    /* the cluster: squared distances to the centre ~ 128 * 2 * 0.05^2 = 0.64 */
    T_REQUIRE(fl_index_search(ix, centre, KR, 2.0f, NULL, a, &na, NULL) == FL_OK);
    T_REQUIRE(fl_index_search_opt(ix, centre, KR, 2.0f, NULL, &exact, b, &nb, NULL) == FL_OK);
    T_CHECK_EQ_INT(nb, NCL);
    T_CHECK_EQ_INT(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        T_CHECK(a[i].id == b[i].id);
    /* without the range, k is the limit: a plain top-40 still works */
    T_REQUIRE(fl_index_search(ix, centre, 40, INFINITY, NULL, a, &na, NULL) == FL_OK);
    T_CHECK_EQ_INT(na, 40);
    /* a cluster point with a radius holding only a few of its neighbours
     * (their squared distances are ~0.64 +- 0.08): no widening, same as the scan */
    T_REQUIRE(fl_index_search(ix, v + 5 * DIM, KR, 0.45f, NULL, a, &na, NULL) == FL_OK);
    T_REQUIRE(fl_index_search_opt(ix, v + 5 * DIM, KR, 0.45f, NULL, &exact, b, &nb, NULL) ==
              FL_OK);
    printf("# cluster point, radius 0.45: %zu in range\n", nb);
    T_CHECK(nb >= 1 && nb < 32);
    T_CHECK_EQ_INT(na, nb);
    for (size_t i = 0; i < na && i < nb; i++)
        T_CHECK(a[i].id == b[i].id);
    fl_free(v);
    fl_free(a);
    fl_free(b);
    fl_index_free(ix);
}

static void test_small_churn(void)
{
    enum fl_index_metric metrics[] = {FL_INDEX_L2, FL_INDEX_IP, FL_INDEX_COSINE};
    for (size_t mi = 0; mi < 3; mi++) {
        struct fl_err err = {0};
        struct fl_index_hnsw_params hp;
        struct fl_index *ix = fl_index_new(SD, metrics[mi], &err);
        bool present[UNIV] = {0};
        size_t count = 0, recall_hit = 0, recall_tot = 0, graph_seen = 0, dropped = 0;
        struct fl_rng r;
        T_REQUIRE(ix);
        fl_index_hnsw_defaults(&hp);
        hp.threshold = 60;
        hp.m = 4;
        hp.ef_construction = 32;
        hp.ef_search = 32;
        T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_OK);
        fl_rng_seed(&r, 77 + mi);
        for (int op = 0; op < 3000; op++) {
            uint64_t id = fl_rng_next(&r) % UNIV;
            float v[SD];
            /* Grow to ~300, shrink to ~10, grow again: crosses the threshold
             * and half of it both ways. */
            bool grow = (op / 1000) % 2 == 0 ? fl_rng_next(&r) % 10 < 8 : fl_rng_next(&r) % 10 < 2;
            if (grow) {
                small_vec(id, (unsigned)op, v);
                T_CHECK_EQ_INT(fl_index_add(ix, id, v, &err), FL_OK);
                count += !present[id];
                present[id] = true;
            } else {
                enum fl_status rc;
                /* Mostly present ids, so the count really falls. */
                for (size_t t = 0; t < UNIV && !present[id] && fl_rng_next(&r) % 8; t++)
                    id = (id + 1) % UNIV;
                rc = fl_index_remove(ix, id, NULL);
                T_CHECK_EQ_INT(rc, present[id] ? FL_OK : FL_ERR_NOT_FOUND);
                count -= present[id];
                present[id] = false;
            }
            T_CHECK_EQ_INT(fl_index_count(ix), count);
            bool has = fl_index_has_graph(ix);
            graph_seen += has;
            if (has && count < hp.threshold / 2)
                T_CHECK(!"graph kept below half the threshold");
            if (!has && count >= hp.threshold)
                T_CHECK(!"no graph at the threshold");
            dropped += !has && graph_seen > 0;
            if (has && op % 5 == 0) {
                check_graph(ix);
                struct fl_index_hit e[5], a[5];
                size_t ne, na;
                small_vec(op, 999999, v);
                fl_index_search_opt(ix, v, 5, INFINITY, NULL, &EXACT, e, &ne, NULL);
                fl_index_search_opt(ix, v, 5, INFINITY, NULL, &APPROX, a, &na, NULL);
                for (size_t x = 0; x < ne; x++) {
                    for (size_t y = 0; y < na; y++)
                        recall_hit += a[y].id == e[x].id && a[y].distance == e[x].distance;
                }
                recall_tot += ne;
            }
        }
        printf("# metric %d: graph present after %zu of 3000 ops, small recall@5 %.3f\n",
               (int)metrics[mi], graph_seen, recall_tot ? (double)recall_hit / recall_tot : 0.0);
        T_CHECK(graph_seen > 500 && dropped > 0);
        T_CHECK(recall_tot > 0 && recall_hit >= recall_tot * 95 / 100);
        fl_index_free(ix);
    }
}

/* Same seed, same operations: byte-identical snapshots; another seed: a
 * different graph over the same vectors. */
static void test_reproducible(void)
{
    struct fl_index_hnsw_params hp;
    uint8_t *p[3] = {0};
    size_t n[3] = {0};
    uint64_t ids[2000];
    fl_index_hnsw_defaults(&hp);
    hp.threshold = 100;
    for (size_t i = 0; i < 2000; i++)
        ids[i] = i;
    for (int run = 0; run < 3; run++) {
        struct fl_index *ix = fl_index_new(DIM, FL_INDEX_L2, NULL);
        T_REQUIRE(ix);
        hp.seed = run == 2 ? 1234 : 99;
        T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, NULL), FL_OK);
        T_CHECK_EQ_INT(fl_index_add_batch(ix, ids, g_base, 1500, NULL), FL_OK);
        for (size_t i = 0; i < 200; i++)
            T_CHECK_EQ_INT(fl_index_remove(ix, i * 5, NULL), FL_OK);
        T_CHECK_EQ_INT(fl_index_add_batch(ix, ids + 1500, g_base + 1500 * DIM, 500, NULL), FL_OK);
        T_CHECK_EQ_INT(fl_index_save_mem(ix, 1, &p[run], &n[run], NULL), FL_OK);
        fl_index_free(ix);
    }
    T_CHECK(n[0] == n[1] && memcmp(p[0], p[1], n[0]) == 0);
    T_CHECK(n[0] != n[2] || memcmp(p[0], p[2], n[0]) != 0);
    for (int i = 0; i < 3; i++)
        fl_free(p[i]);
}

static void test_params(void)
{
    struct fl_err err = {0};
    struct fl_index_hnsw_params hp;
    struct fl_index *ix = fl_index_new(4, FL_INDEX_L2, &err);
    struct fl_index_search_opts bad = {.mode = (enum fl_index_search_mode)9};
    struct fl_index_hit h[1];
    size_t n;
    float v[4] = {1, 2, 3, 4};
    T_REQUIRE(ix);
    fl_index_hnsw_defaults(&hp);
    T_CHECK_EQ_INT(hp.threshold, FL_INDEX_HNSW_THRESHOLD_DEFAULT);
    hp.m = 1;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_ERR_INVALID_ARG);
    hp.m = 65;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_ERR_INVALID_ARG);
    hp.m = 8;
    hp.ef_range = 0;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_ERR_INVALID_ARG);
    hp.ef_range = FL_INDEX_EF_MAX + 1;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_ERR_INVALID_ARG);
    hp.ef_range = FL_INDEX_EF_RANGE_DEFAULT;
    hp.ef_search = 0;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_ERR_INVALID_ARG);
    T_CHECK_EQ_INT(fl_index_search_opt(ix, v, 1, INFINITY, NULL, &bad, h, &n, &err),
                   FL_ERR_INVALID_ARG);
    /* threshold 1: a graph of one node, then none. */
    hp.ef_search = 10;
    hp.threshold = 1;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_OK);
    T_CHECK(!fl_index_has_graph(ix));
    T_CHECK_EQ_INT(fl_index_add(ix, 5, v, &err), FL_OK);
    T_CHECK(fl_index_has_graph(ix));
    check_graph(ix);
    T_CHECK_EQ_INT(fl_index_search(ix, v, 1, INFINITY, NULL, h, &n, &err), FL_OK);
    T_CHECK(n == 1 && h[0].id == 5);
    T_CHECK_EQ_INT(fl_index_add(ix, 5, v, &err), FL_OK); /* replace the only node */
    check_graph(ix);
    T_CHECK_EQ_INT(fl_index_remove(ix, 5, &err), FL_OK);
    T_CHECK_EQ_INT(fl_index_search(ix, v, 1, INFINITY, NULL, h, &n, &err), FL_OK);
    T_CHECK_EQ_INT(n, 0);
    /* SIZE_MAX: never a graph. */
    hp.threshold = SIZE_MAX;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_OK);
    for (uint64_t i = 0; i < 50; i++) {
        v[0] = (float)i;
        T_CHECK_EQ_INT(fl_index_add(ix, i, v, &err), FL_OK);
    }
    T_CHECK(!fl_index_has_graph(ix));
    /* Lowering the threshold builds it at once. */
    hp.threshold = 10;
    T_CHECK_EQ_INT(fl_index_set_hnsw(ix, &hp, &err), FL_OK);
    T_CHECK(fl_index_has_graph(ix));
    check_graph(ix);
    /* An absurd ef is capped, not trusted. */
    struct fl_index_search_opts huge = {.mode = FL_INDEX_SEARCH_APPROX, .ef = SIZE_MAX};
    T_CHECK_EQ_INT(fl_index_search_opt(ix, v, 1, INFINITY, NULL, &huge, h, &n, &err), FL_OK);
    T_CHECK(n == 1 && h[0].id == 49);
    fl_index_free(ix);
}

/* Every allocation of a graph write made to fail in turn: FL_ERR_NOMEM (or
 * success), the index as before, the graph valid, no leaks. */
static void test_alloc_failure(void)
{
    struct fl_index_hnsw_params hp;
    float v[SD];
    uint64_t ids[64];
    float vecs[64 * SD];
    fl_index_hnsw_defaults(&hp);
    hp.threshold = 8;
    hp.m = 2; /* many upper levels: upper-list allocations */
    for (size_t i = 0; i < 64; i++) {
        ids[i] = 5000 + i * 2; /* new ids, and 5000 (added just before) repeated */
        small_vec(ids[i], 1, vecs + i * SD);
    }
    long base = fl_alloc_live();
    int failures = 0, mismatched = 0;
    for (long at = 1; at < 400; at++) {
        struct fl_index *ix = fl_index_new(SD, FL_INDEX_L2, NULL);
        T_REQUIRE(ix);
        T_REQUIRE(fl_index_set_hnsw(ix, &hp, NULL) == FL_OK);
        for (uint64_t id = 0; id < 1000; id++) {
            small_vec(id, 0, v);
            T_REQUIRE(fl_index_add(ix, id, v, NULL) == FL_OK);
        }
        fl_test_fail_alloc_at(at);
        enum fl_status r1 = fl_index_add(ix, 5000, v, NULL);
        enum fl_status r2 = fl_index_add_batch(ix, ids, vecs, 64, NULL);
        long inj = fl_test_injected();
        fl_test_fail_alloc_at(0);
        size_t want = 1000 + (r1 == FL_OK) + (r2 == FL_OK ? 63 + (r1 != FL_OK) : 0);
        struct fl_err e = {0};
        if ((r1 != FL_OK && r1 != FL_ERR_NOMEM) || (r2 != FL_OK && r2 != FL_ERR_NOMEM) ||
            fl_index_count(ix) != want || fl__index_check_graph(ix, true, &e) != FL_OK) {
            printf("# fail at %ld: %d %d count %zu want %zu: %s\n", at, r1, r2, fl_index_count(ix),
                   want, e.msg);
            mismatched++;
        }
        failures += inj > 0;
        fl_index_free(ix);
        if (inj == 0)
            break;
    }
    printf("# %d injected allocation failures\n", failures);
    T_CHECK(failures > 3);
    T_CHECK_EQ_INT(mismatched, 0);
    T_CHECK_EQ_INT(fl_alloc_live(), base);
}

/* ---- concurrency ---- */

enum { CD = 32, CUNIV = 6000, READERS = 2, C_WRITER_OPS = 6000, C_READER_OPS = 1500 };

static struct fl_index *c_ix;
static atomic_int c_bad, c_done;

static void cvec(uint64_t id, float *out)
{
    struct fl_rng r;
    fl_rng_seed(&r, id * 31 + 7);
    for (size_t i = 0; i < CD; i++)
        out[i] = (float)(fl_rng_double(&r) * 2.0 - 1.0);
}

static void *c_reader(void *arg)
{
    struct fl_rng r;
    const struct fl__index_dist *kern = fl__index_dist_active();
    fl_rng_seed(&r, (uint64_t)(uintptr_t)arg);
    for (int i = 0; i < C_READER_OPS && !atomic_load(&c_done); i++) {
        float q[CD], w[CD];
        struct fl_index_hit h[K];
        size_t n;
        for (size_t j = 0; j < CD; j++)
            q[j] = (float)(fl_rng_double(&r) * 2.0 - 1.0);
        if (fl_index_search(c_ix, q, K, INFINITY, NULL, h, &n, NULL) != FL_OK) {
            atomic_fetch_add(&c_bad, 1);
            continue;
        }
        for (size_t x = 0; x < n; x++) {
            cvec(h[x].id, w);
            if (h[x].id >= CUNIV || kern->l2(q, w, CD) != h[x].distance ||
                (x > 0 && (h[x].distance < h[x - 1].distance || h[x].id == h[x - 1].id)))
                atomic_fetch_add(&c_bad, 1);
        }
    }
    return NULL;
}

static void *c_writer(void *arg)
{
    struct fl_rng r;
    (void)arg;
    fl_rng_seed(&r, 4242);
    for (int i = 0; i < C_WRITER_OPS; i++) {
        uint64_t id = fl_rng_next(&r) % CUNIV;
        float v[CD];
        if (fl_rng_next(&r) % 3 == 0) {
            fl_index_remove(c_ix, id, NULL);
        } else {
            cvec(id, v);
            if (fl_index_add(c_ix, id, v, NULL) != FL_OK)
                atomic_fetch_add(&c_bad, 1);
        }
    }
    atomic_store(&c_done, 1);
    return NULL;
}

static void test_concurrency(void)
{
    struct fl_index_hnsw_params hp;
    pthread_t rd[READERS], wr;
    c_ix = fl_index_new(CD, FL_INDEX_L2, NULL);
    T_REQUIRE(c_ix);
    fl_index_hnsw_defaults(&hp);
    hp.threshold = 500;
    hp.ef_construction = 64;
    T_REQUIRE(fl_index_set_hnsw(c_ix, &hp, NULL) == FL_OK);
    for (uint64_t id = 0; id < 2000; id++) {
        float v[CD];
        cvec(id, v);
        T_REQUIRE(fl_index_add(c_ix, id, v, NULL) == FL_OK);
    }
    T_REQUIRE(fl_index_has_graph(c_ix));
    for (uintptr_t i = 0; i < READERS; i++)
        pthread_create(&rd[i], NULL, c_reader, (void *)(i + 1));
    pthread_create(&wr, NULL, c_writer, NULL);
    pthread_join(wr, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(rd[i], NULL);
    T_CHECK_EQ_INT(atomic_load(&c_bad), 0);
    check_graph(c_ix);
    fl_index_free(c_ix);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_WARN, false);
    make_data();
    T_RUN(test_params);
    T_RUN(test_small_churn);
    T_RUN(test_range_beyond_ef);
    T_RUN(test_alloc_failure);
    T_RUN(test_reproducible);
    T_RUN(test_concurrency);
    T_RUN(test_recall_build);
    T_RUN(test_range_ef);
    T_RUN(test_mass_delete);
    T_RUN(test_replace);
    T_RUN(test_snapshot);
    fl_index_free(g_big);
    fl_free(g_centres);
    fl_free(g_base);
    fl_free(g_queries);
    return t_done();
}
