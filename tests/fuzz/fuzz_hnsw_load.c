/* fuzz_hnsw_load.c: libFuzzer target for index snapshots (fl_index_load_mem),
 * the HNSW graph section included.
 *
 * The expected dim, metric and generation are taken from the input's own
 * header, so mutations reach the body. Each input is loaded twice: as given
 * (almost always a checksum mismatch) and with its trailing SHA-256 recomputed,
 * so the structural validation behind the checksum is fuzzed too. Any input
 * must give FL_ERR_CORRUPT (or NOMEM) or an index whose graph passes
 * fl__index_check_graph; a loaded index is then searched (exact and graph),
 * changed (a remove and an add), saved and loaded again, which must succeed.
 * Inputs over 1 MiB are skipped.
 *
 * Replayed over tests/fuzz/corpus/hnsw_load/ by `make test`; `make fuzz`
 * builds it with libFuzzer. The corpus was written by
 * tests/fuzz/gen_hnsw_corpus.c (build and run line in its header).
 */
#include "index/index_int.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Search, change, save and reload a loaded index; trap on broken promises. */
static void exercise(struct fl_index *ix, uint64_t gen)
{
    size_t dim = fl_index_dim(ix), n;
    float *q = fl_malloc(dim * sizeof(float));
    struct fl_index_hit h[4];
    struct fl_index_search_opts o = {.mode = FL_INDEX_SEARCH_APPROX};
    uint8_t *p = NULL;
    size_t len = 0;
    if (!q)
        return;
    if (fl__index_check_graph(ix, false, NULL) != FL_OK)
        __builtin_trap();
    for (size_t i = 0; i < dim; i++)
        q[i] = (float)(i % 7) - 2.5f;
    fl_index_search_opt(ix, q, 4, INFINITY, NULL, &o, h, &n, NULL);
    o.mode = FL_INDEX_SEARCH_EXACT;
    fl_index_search_opt(ix, q, 4, INFINITY, NULL, &o, h, &n, NULL);
    if (n > 0)
        fl_index_remove(ix, h[0].id, NULL);
    fl_index_add(ix, 0x5eed, q, NULL);
    if (fl__index_check_graph(ix, false, NULL) != FL_OK)
        __builtin_trap();
    if (fl_index_save_mem(ix, gen, &p, &len, NULL) == FL_OK) {
        struct fl_err err = {0};
        struct fl_index *again =
            fl_index_load_mem(p, len, dim, fl_index_metric(ix), gen, NULL, &err);
        if (!again && err.code != FL_ERR_NOMEM)
            __builtin_trap(); /* our own output must load */
        fl_index_free(again);
        fl_free(p);
    }
    fl_free(q);
}

static void load(const uint8_t *data, size_t size)
{
    struct fl_err err = {0};
    size_t dim = rd32(data + 12);
    uint32_t metric = rd32(data + 16);
    uint64_t gen = (uint64_t)rd32(data + 36) << 32 | rd32(data + 32);
    struct fl_index *ix;
    if (dim < 1 || dim > 4096 || metric > 2)
        dim = 4, metric = 0; /* still run the loader: it must reject the header */
    ix = fl_index_load_mem(data, size, dim, (enum fl_index_metric)metric, gen, NULL, &err);
    if (ix) {
        exercise(ix, gen);
        fl_index_free(ix);
    } else if (err.code != FL_ERR_CORRUPT && err.code != FL_ERR_NOMEM) {
        __builtin_trap(); /* the loader promised CORRUPT for bad bytes */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    uint8_t *copy;
    if (!inited) {
        fl_core_init();
        fl_log_setup(FL_LOG_OFF, false);
        inited = 1;
    }
    if (size > ((size_t)1 << 20) || size < 40 + 32)
        return 0;
    load(data, size);
    copy = fl_malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    fl_sha256(copy, size - 32, copy + size - 32);
    load(copy, size);
    fl_free(copy);
    return 0;
}
