/* fuzz_tflite.c: libFuzzer target for the TFLite reader and importer.
 *
 * Any byte string must give FL_ERR_CORRUPT / FL_ERR_INVALID_ARG / a model,
 * never a crash, leak or UB. Not built by the Makefile; build and run with
 * (from the repository root, after `make CC=clang SAN=address,undefined`):
 *
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_tflite.c build-address-undefined/libfacelink.a \
 *       $(pkg-config --libs jansson libcrypto) -lXNNPACK -lpthreadpool -lcpuinfo -lm \
 *       -lpthread -o build-address-undefined/fuzz_tflite
 *   build-address-undefined/fuzz_tflite -max_len=65536 tests/fuzz/corpus_tflite
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
