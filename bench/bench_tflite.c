/* bench_tflite.c: time per forward of the imported expo TFLite nets (not a test).
 *
 * For MobileFaceNet (112x112), MTCNN rnet (24x24), onet (48x48) and pnet on a
 * 640x480 image (fed transposed: a 640 x 480 tensor), reports the median
 * wall time and the median thread-CPU time per forward over many runs, with
 * XNNPACK on one thread (and the scalar reference for comparison). Inputs
 * are a fixed pseudo-random pattern in the preprocessed range [-1, 1].
 *
 * Build and run from the repository root:
 *   make -j2 build/libfacelink.a
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc bench/bench_tflite.c \
 *       build/libfacelink.a $(pkg-config --libs jansson libcrypto) \
 *       -lXNNPACK -lpthreadpool -lcpuinfo -lm -lpthread -o build/bench_tflite
 *   build/bench_tflite          (models/ must hold the expo package)
 */
#include "bench_util.h"
#include "nn/tflite.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Median wall and CPU ms of n_runs forwards (after 3 warm-up runs). */
static int bench(struct fl_nn_model *m, int h, int w, enum fl_nn_backend b, int n_runs,
                 double *wall_ms, double *cpu_ms)
{
    struct fl_err err = {0};
    struct fl_nn_exec *e = fl_nn_exec_new(m, h, w, b, 1, &err);
    uint64_t *wall, *cpu;
    float *in;
    size_t n_in;
    if (!e) {
        fprintf(stderr, "exec_new: %s\n", err.msg);
        return -1;
    }
    n_in = (size_t)(h ? h : 1) * (size_t)(w ? w : 1) * 3;
    in = fl_nn_exec_input(e);
    for (size_t i = 0; i < n_in; i++)
        in[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    wall = calloc((size_t)n_runs, sizeof(*wall));
    cpu = calloc((size_t)n_runs, sizeof(*cpu));
    for (int i = 0; i < 3; i++)
        fl_nn_exec_run(e, NULL);
    for (int i = 0; i < n_runs; i++) {
        uint64_t t0 = fl_time_mono_ns(), c0 = thread_cpu_ns();
        if (fl_nn_exec_run(e, &err) != FL_OK) {
            fprintf(stderr, "run: %s\n", err.msg);
            break;
        }
        cpu[i] = thread_cpu_ns() - c0;
        wall[i] = fl_time_mono_ns() - t0;
    }
    qsort(wall, (size_t)n_runs, sizeof(*wall), cmp_u64);
    qsort(cpu, (size_t)n_runs, sizeof(*cpu), cmp_u64);
    *wall_ms = (double)wall[n_runs / 2] / 1e6;
    *cpu_ms = (double)cpu[n_runs / 2] / 1e6;
    free(wall);
    free(cpu);
    fl_nn_exec_free(e);
    return 0;
}

int main(void)
{
    static const struct {
        const char *name, *file;
        enum fl_nn_tflite_net net;
        int h, w, runs_xnn, runs_ref;
    } cases[] = {
        {"MobileFaceNet 112x112", "MobileFaceNet.tflite", FL_NN_TFLITE_MOBILEFACENET, 0, 0, 200, 5},
        {"MTCNN rnet 24x24", "rnet.tflite", FL_NN_TFLITE_RNET, 0, 0, 2000, 100},
        {"MTCNN onet 48x48", "onet.tflite", FL_NN_TFLITE_ONET, 0, 0, 1000, 30},
        {"MTCNN pnet 640x480", "pnet.tflite", FL_NN_TFLITE_PNET, 640, 480, 50, 3},
    };
    fl_core_init();
    printf("%-24s %10s %14s %14s %14s\n", "net", "MMACs", "xnn wall ms", "xnn cpu ms",
           "ref cpu ms");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[512];
        struct fl_err err = {0};
        struct fl_nn_model *m;
        double xw = 0, xc = 0, rw = 0, rc = 0;
        snprintf(path, sizeof(path), "models/expo/android/src/main/assets/%s", cases[i].file);
        m = fl_nn_tflite_import_file(path, cases[i].net, &err);
        if (!m) {
            fprintf(stderr, "%s: %s\n", path, err.msg);
            return 1;
        }
        if (bench(m, cases[i].h, cases[i].w, FL_NN_BACKEND_XNNPACK, cases[i].runs_xnn, &xw,
                  &xc) ||
            bench(m, cases[i].h, cases[i].w, FL_NN_BACKEND_REF, cases[i].runs_ref, &rw, &rc)) {
            fl_nn_model_unref(m);
            return 1;
        }
        printf("%-24s %10.1f %14.3f %14.3f %14.3f\n", cases[i].name,
               (double)fl_nn_model_macs(m, cases[i].h, cases[i].w) / 1e6, xw, xc, rc);
        fl_nn_model_unref(m);
    }
    return 0;
}
