/* fuzz_tflite.c: libFuzzer target for the TFLite reader and importer.
 *
 * Any byte string must give FL_ERR_CORRUPT / FL_ERR_INVALID_ARG / a model,
 * never a crash, leak or UB. Not built by the Makefile. Build the library
 * with coverage instrumentation, then the target (from the repository root):
 *
 *   make CC=clang SAN=address,undefined,fuzzer-no-link \
 *       build-address-undefined-fuzzer-no-link/libfacelink.a
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_tflite.c build-address-undefined-fuzzer-no-link/libfacelink.a \
 *       $(pkg-config --libs jansson libcrypto) -lXNNPACK -lpthreadpool -lcpuinfo -lm \
 *       -lpthread -o fuzz_tflite
 *   mkdir -p /tmp/corpus && cp -r tests/fuzz/corpus/tflite/. /tmp/corpus/
 *   ./fuzz_tflite -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=1024 /tmp/corpus
 *
 * The seeds in corpus_tflite/ are the synthetic models of
 * tests/unit/test_nn_tflite.c (FL_TFLITE_CORPUS_OUT=dir writes them); the
 * expo pnet.tflite (32 KB) is a good extra seed. */
#include "nn/tflite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct fl_err err;
    struct fl_tfl_model m;
    struct fl_nn_model *model;
    if (!init) {
        fl_core_init();
        fl_log_setup(FL_LOG_OFF, false);
        init = true;
    }
    if (fl__nn_tfl_parse(data, size, &m, &err) == FL_OK)
        fl__nn_tfl_model_fini(&m);
    model = fl_nn_tflite_import(data, size, FL_NN_TFLITE_GENERIC, &err);
    fl_nn_model_unref(model);
    return 0;
}
