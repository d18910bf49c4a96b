/* bench_nn.c: micro-benchmarks of the nn engine (not a test).
 *
 * Reports, for each case, the median time per run over many runs and the
 * throughput in GFLOP/s (2 x multiply-accumulates / time). The headline case
 * is DESIGN.md §6.1's: one 3x3 convolution 64 -> 64 channels on 56x56 with
 * padding 1, through XNNPACK on one thread (measured there: 1.77 ms, 131
 * GFLOP/s on the project machine).
 *
 * Build and run from the repository root:
 *   make -j2 build/libfacelink.a
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc bench/bench_nn.c \
 *       build/libfacelink.a $(pkg-config --libs jansson libcrypto) \
 *       -lXNNPACK -lpthreadpool -lcpuinfo -lm -lpthread -o build/bench_nn
 *   build/bench_nn            (optionally: build/bench_nn <max_threads>)
 */
#include "bench_util.h"
#include "nn/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Median wall ns per run of e over n_runs (after warm-up); the median
 * calling-thread CPU ns into *cpu. */
static double time_exec(struct fl_nn_exec *e, int n_runs, double *cpu)
{
    uint64_t *t = malloc((size_t)n_runs * sizeof(*t)), *c = malloc((size_t)n_runs * sizeof(*c));
    double med;
    for (int i = 0; i < 5; i++)
        fl_nn_exec_run(e, NULL);
    for (int i = 0; i < n_runs; i++) {
        uint64_t t0 = fl_time_mono_ns(), c0 = thread_cpu_ns();
        fl_nn_exec_run(e, NULL);
        c[i] = thread_cpu_ns() - c0;
        t[i] = fl_time_mono_ns() - t0;
    }
    qsort(t, (size_t)n_runs, sizeof(*t), cmp_u64);
    qsort(c, (size_t)n_runs, sizeof(*c), cmp_u64);
    med = (double)t[n_runs / 2];
    *cpu = (double)c[n_runs / 2];
    free(t);
    free(c);
    return med;
}

static void bench(const char *label, struct fl_nn_model *m, int h, int w, enum fl_nn_backend be,
                  int threads, int n_runs)
{
    struct fl_err err = {0};
    struct fl_nn_exec *e = fl_nn_exec_new(m, h, w, be, threads, &err);
    double ns, cpu, flops = 2.0 * (double)fl_nn_model_macs(m, h, w);
    if (!e) {
        printf("%-44s exec_new failed: %s\n", label, err.msg);
        return;
    }
    for (int i = 0; i < 64; i++)
        fl_nn_exec_input(e)[i] = (float)i / 64.0f;
    ns = time_exec(e, n_runs, &cpu);
    printf("%-26s %s %dt  wall %8.3f ms %6.1f GFLOP/s", label,
           be == FL_NN_BACKEND_REF ? "ref" : "xnn", threads, ns / 1e6, flops / ns);
    if (threads == 1)
        printf("   cpu %8.3f ms %6.1f GFLOP/s", cpu / 1e6, flops / cpu);
    printf("\n");
    fl_nn_exec_free(e);
}

static float *rnd(size_t n)
{
    float *p = malloc(n * sizeof(float));
    struct fl_rng r;
    fl_rng_seed(&r, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)fl_rng_double(&r) - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    struct fl_err err = {0};
    struct fl_nn_pad4 p1 = {1, 1, 1, 1};
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    float *w = rnd(64 * 9 * 64 * 4), *b = rnd(256);
    struct fl_nn_graph *g;
    struct fl_nn_model *conv, *net;
    int x;

    fl_core_init();
    g = fl_nn_graph_new("conv3x3");
    fl_nn_output(g, fl_nn_conv2d(g, fl_nn_input(g, 56, 56, 64), w, b, 64, 3, 3, 1, 1, p1,
                                 FL_NN_ACT_NONE, 0));
    conv = fl_nn_model_new(g, &err);

    /* a MobileNet-like stack on a dynamic input */
    g = fl_nn_graph_new("mobilenet-ish");
    x = fl_nn_input(g, 0, 0, 3);
    x = fl_nn_conv2d(g, x, w, b, 32, 3, 3, 2, 2, (struct fl_nn_pad4){0, 0, 1, 1}, FL_NN_ACT_RELU6,
                     0);
    for (int i = 0, c = 32; i < 6; i++) {
        int s = (i % 2) ? 2 : 1, co = (i % 2) ? c * 2 : c;
        x = fl_nn_dwconv2d(g, x, w, b, 1, 3, 3, s, s, s == 1 ? p1 : (struct fl_nn_pad4){0, 0, 1, 1},
                           FL_NN_ACT_RELU6, 0);
        x = fl_nn_conv2d(g, x, w, b, co, 1, 1, 1, 1, (struct fl_nn_pad4){0, 0, 0, 0},
                         FL_NN_ACT_RELU6, 0);
        c = co;
    }
    fl_nn_output(g, fl_nn_global_avgpool(g, x));
    net = fl_nn_model_new(g, &err);
    if (!conv || !net) {
        printf("model_new: %s\n", err.msg);
        return 1;
    }
    printf("conv 3x3 64->64 on 56x56 pad 1: %.1f MMAC\n", fl_nn_model_macs(conv, 0, 0) / 1e6);
    for (int t = 1; t <= max_threads; t++)
        bench("conv3x3 64->64 56x56", conv, 0, 0, FL_NN_BACKEND_XNNPACK, t, 200);
    bench("conv3x3 64->64 56x56", conv, 0, 0, FL_NN_BACKEND_REF, 1, 3);
    printf("mobilenet-ish: %.1f MMAC at 224x224\n", fl_nn_model_macs(net, 224, 224) / 1e6);
    for (int t = 1; t <= max_threads; t++)
        bench("mobilenet-ish 224x224", net, 224, 224, FL_NN_BACKEND_XNNPACK, t, 100);
    fl_nn_model_unref(conv);
    fl_nn_model_unref(net);
    free(w);
    free(b);
    return 0;
}
