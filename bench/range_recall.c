/*
 * range_recall.c: how wide a graph search must be to find what a
 * thresholded search (SearchFaces with FaceMatchThreshold) should return.
 * Not a test; the figures behind FL_INDEX_EF_RANGE_DEFAULT.
 *
 *   range_recall synth [N [NQ]]        seed_faces-like data: clusters of 8
 *                                      unit 320-d vectors (default 100,000)
 *   range_recall FILE.f32 [NQ]         real vectors: N x 320 float32, e.g. the
 *                                      fused LFW vectors written by
 *                                      tools/eval_crosscheck.py --export-fused
 *
 * A cosine index with its graph (threshold forced to 1, default M and
 * efConstruction); NQ stored vectors (default 3,000, or every one of the
 * file) are queries, each excluded from its own results, k 10, with the
 * fused model's distance bounds for Similarity 80 and 50. For ef 10..192:
 * the share of the exact scan's in-range hits the graph returns, how many
 * queries lose one, and the thread CPU time per search (one thread).
 */
#include "bench_util.h"
#include "core/core.h"
#include "face/calibration.h"
#include "index/index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 320
#define K   10

/* Clusters of 8: centre components N(0, 0.09 s), members add N(0, 0.03 s),
 * s = sqrt(128 / DIM) (as bench/seed_faces.c; the index normalises). */
static float *synth(size_t n)
{
    struct fl_rng r;
    float *v = malloc(sizeof(float) * DIM * n), c[DIM];
    double s = sqrt(128.0 / DIM);
    fl_rng_seed(&r, 7);
    for (size_t i = 0; v && i < n; i++) {
        if (i % 8 == 0) {
            for (int k = 0; k < DIM; k++)
                c[k] = (float)(bench_gauss(&r) * 0.09 * s);
        }
        for (int k = 0; k < DIM; k++)
            v[i * DIM + k] = c[k] + (float)(bench_gauss(&r) * 0.03 * s);
    }
    return v;
}

static float *load(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    float *v = NULL;
    long bytes;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (bytes = ftell(f)) > 0 && bytes % (DIM * 4) == 0) {
        *n = (size_t)bytes / (DIM * 4);
        v = malloc((size_t)bytes);
        rewind(f);
        if (v && fread(v, DIM * 4, *n, f) != *n) {
            free(v);
            v = NULL;
        }
    }
    fclose(f);
    return v;
}

static void sweep(struct fl_index *ix, const float *v, size_t n, size_t nq, float bound, int sim)
{
    static const size_t efs[] = {10, 16, 24, 32, 48, 64, 96, 128, 192};
    struct fl_index_search_opts exact = {.mode = FL_INDEX_SEARCH_EXACT};
    struct fl_index_hit a[K], *x = malloc(sizeof(*x) * K * nq);
    size_t na, *nx = malloc(sizeof(*nx) * nq);
    if (!x || !nx)
        exit(1);
    /* the exact answers once (a scan of the whole set per query) */
    for (size_t i = 0; i < nq; i++) {
        uint64_t id = (i * 7919) % n;
        if (fl_index_search_opt(ix, v + id * DIM, K, bound, &id, &exact, x + i * K, &nx[i],
                                NULL) != FL_OK)
            exit(1);
    }
    printf("  Similarity >= %d (cosine distance <= %.4f), k %d:\n", sim, bound, K);
    for (size_t ei = 0; ei < sizeof(efs) / sizeof(efs[0]); ei++) {
        struct fl_index_search_opts o = {.mode = FL_INDEX_SEARCH_APPROX, .ef = efs[ei]};
        size_t hit = 0, tot = 0, with = 0, lose = 0;
        uint64_t ns = 0;
        for (size_t i = 0; i < nq; i++) {
            uint64_t id = (i * 7919) % n, t0 = thread_cpu_ns();
            if (fl_index_search_opt(ix, v + id * DIM, K, bound, &id, &o, a, &na, NULL) != FL_OK)
                exit(1);
            ns += thread_cpu_ns() - t0;
            size_t h = 0;
            for (size_t p = 0; p < nx[i]; p++) {
                for (size_t q = 0; q < na; q++)
                    h += x[i * K + p].id == a[q].id;
            }
            hit += h;
            tot += nx[i];
            with += nx[i] > 0;
            lose += h < nx[i];
        }
        printf("    ef %3zu: in-range recall %.5f (%zu of %zu), %zu of %zu queries with a match "
               "lose one, %.0f us/search\n",
               efs[ei], tot ? (double)hit / tot : 1.0, hit, tot, lose, with, ns / 1e3 / nq);
    }
    free(x);
    free(nx);
}

int main(int argc, char **argv)
{
    struct fl_err e = {0};
    struct fl_index_hnsw_params hp;
    struct fl_index *ix;
    size_t n = 100000, nq;
    float *v;
    bool syn = argc < 2 || strcmp(argv[1], "synth") == 0;
    fl_core_init();
    if (syn) {
        n = argc > 2 ? strtoul(argv[2], NULL, 10) : n;
        nq = argc > 3 ? strtoul(argv[3], NULL, 10) : 3000;
        v = synth(n);
    } else {
        v = load(argv[1], &n);
        nq = argc > 2 ? strtoul(argv[2], NULL, 10) : n;
    }
    if (!v || n < 2) {
        fprintf(stderr, "range_recall: no vectors (%s)\n", syn ? "out of memory" : argv[1]);
        return 1;
    }
    nq = nq < n ? nq : n;
    uint64_t *ids = malloc(sizeof(*ids) * n), t0 = thread_cpu_ns();
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = i;
    fl_index_hnsw_defaults(&hp);
    hp.threshold = 1;
    ix = fl_index_new(DIM, FL_INDEX_COSINE, &e);
    if (!ids || !ix || fl_index_set_hnsw(ix, &hp, &e) != FL_OK ||
        fl_index_add_batch(ix, ids, v, n, &e) != FL_OK) {
        fprintf(stderr, "range_recall: %s\n", e.msg);
        return 1;
    }
    printf("range search recall, %s: %zu x %d cosine, graph built in %.1f s, %zu queries\n",
           syn ? "synthetic clusters of 8" : argv[1], n, DIM, (thread_cpu_ns() - t0) * 1e-9, nq);
    for (size_t i = 0; i < n; i++) /* the stored (normalised) vectors are the queries */
        fl_index_get(ix, i, v + i * DIM, NULL);
    sweep(ix, v, n, nq, fl_face_similarity_distance(FL_FACE_MODEL_FUSED, 80.0f), 80);
    sweep(ix, v, n, nq, fl_face_similarity_distance(FL_FACE_MODEL_FUSED, 50.0f), 50);
    fl_index_free(ix);
    free(ids);
    free(v);
    return 0;
}
