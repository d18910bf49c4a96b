/* fuzz_nn_load.c: libFuzzer target for the .flm loader (fl_nn_model_load_mem).
 *
 * Any input must give FL_ERR_CORRUPT (or NOMEM) or a valid model; a valid
 * model is then planned and run with the reference backend when it is small
 * (tiny cost bound, libvips' habit), so the shape checks that guard the
 * kernels are fuzzed too. Inputs over 1 MiB are skipped.
 *
 * Not wired into the Makefile. Build and run from the repository root:
 *   make CC=clang SAN=address,undefined build-address-undefined/libfacelink.a
 *   clang -std=c11 -g -O1 -fsanitize=address,undefined,fuzzer -Iinclude -Isrc \
 *       tests/fuzz/fuzz_nn_load.c build-address-undefined/libfacelink.a \
 *       $(pkg-config --libs jansson libcrypto) -lXNNPACK -lpthreadpool -lcpuinfo -lm -lpthread \
 *       -o build-address-undefined/fuzz_nn_load
 *   build-address-undefined/fuzz_nn_load -max_total_time=60 tests/fuzz/corpus/nn_load
 */
#include "nn/nn_int.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Plan and run m with the reference backend if every value is small. */
static void exercise(struct fl_nn_model *m)
{
    int(*shp)[3] = fl_malloc((size_t)m->ir.n_ops * sizeof(*shp));
    size_t total = 0;
    struct fl_nn_exec *e;
    if (!shp)
        return;
    if (fl__nn_infer_shapes(&m->ir, 0, 0, shp, NULL) == FL_OK) {
        for (int v = 0; v < m->ir.n_ops; v++)
            total += (size_t)shp[v][0] * shp[v][1] * shp[v][2];
    } else {
        total = SIZE_MAX;
    }
    fl_free(shp);
    if (total > 20000 || fl_nn_model_macs(m, 0, 0) > 1000000)
        return;
    e = fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_REF, 1, NULL);
    if (e) {
        fl_nn_exec_run(e, NULL);
        fl_nn_exec_free(e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    struct fl_err err;
    struct fl_nn_model *m;
    if (!inited) {
        fl_core_init();
        fl_log_setup(FL_LOG_OFF, false);
        inited = 1;
    }
    if (size > ((size_t)1 << 20))
        return 0;
    m = fl_nn_model_load_mem(data, size, &err);
    if (m) {
        exercise(m);
        fl_nn_model_unref(m);
    } else if (err.code != FL_ERR_CORRUPT && err.code != FL_ERR_NOMEM) {
        __builtin_trap(); /* the loader promised CORRUPT for bad bytes */
    }
    return 0;
}
