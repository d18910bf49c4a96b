/* gen_hnsw_corpus.c: writes the seed corpus of fuzz_hnsw_load (small valid
 * snapshots: graph and no graph, every metric, after removals, empty). Not
 * built by the Makefile. From the repository root:
 *   make -j2 build/libfacelink.a
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc \
 *      tests/fuzz/gen_hnsw_corpus.c build/libfacelink.a \
 *      $(pkg-config --libs jansson libcrypto) -lm -lpthread -o build/gen_hnsw_corpus
 *   build/gen_hnsw_corpus tests/fuzz/corpus/hnsw_load
 */
#include "core/core.h"
#include "index/index.h"

#include <stdio.h>

static int write_one(const char *dir, const char *name, size_t dim, enum fl_index_metric metric,
                     size_t n, size_t n_remove, size_t threshold, unsigned m)
{
    struct fl_index_hnsw_params hp;
    struct fl_rng r;
    struct fl_index *ix = fl_index_new(dim, metric, NULL);
    uint8_t *p = NULL;
    size_t len = 0;
    char path[512];
    float v[64];
    int rc = 1;
    if (!ix)
        return 1;
    fl_index_hnsw_defaults(&hp);
    hp.threshold = threshold;
    hp.m = m;
    hp.ef_construction = 16;
    fl_index_set_hnsw(ix, &hp, NULL);
    fl_rng_seed(&r, n * 31 + dim);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++)
            v[j] = (float)(fl_rng_double(&r) * 2.0 - 1.0);
        fl_index_add(ix, i * 3 + 1, v, NULL);
    }
    for (size_t i = 0; i < n_remove; i++)
        fl_index_remove(ix, i * 6 + 1, NULL);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (fl_index_save_mem(ix, 17, &p, &len, NULL) == FL_OK &&
        fl_file_write_atomic(path, p, len, NULL) == FL_OK)
        rc = 0;
    fl_free(p);
    fl_index_free(ix);
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/hnsw_load";
    int rc = 0;
    fl_core_init();
    rc |= write_one(dir, "l2_graph.snap", 4, FL_INDEX_L2, 40, 5, 8, 2);
    rc |= write_one(dir, "ip_graph.snap", 8, FL_INDEX_IP, 60, 10, 10, 4);
    rc |= write_one(dir, "cos_graph.snap", 3, FL_INDEX_COSINE, 25, 0, 1, 3);
    rc |= write_one(dir, "l2_nograph.snap", 5, FL_INDEX_L2, 6, 1, SIZE_MAX, 16);
    rc |= write_one(dir, "empty.snap", 2, FL_INDEX_L2, 0, 0, 8, 16);
    return rc;
}
