/*
 * bench_layers.c: where the engine's nets spend their time, on one core
 * (a benchmark, not a test; `scripts/bench_http layers` runs it).
 *
 * Part 1: each net the engine runs, at the input size the pipeline gives it:
 * multiply-accumulates, median CPU ms per run (calling thread; XNNPACK on
 * that thread alone) and GFLOP/s (2 x MAC / time); the two embedding nets
 * also per item in batches of 2, 4 and 8 (fl_nn_exec_new_batch).
 *
 * PNet also: what a level of a new size costs (executor creation and its
 * first run) against a warm run.
 *
 * Part 2: the dlib ResNet layer by layer. Every convolution and fully
 * connected op of the model is rebuilt alone (same shapes, weights, stride,
 * padding and fused activation) as a one-op model, timed the same way, and
 * grouped by kind (kernel, stride, input size, channels). The convolutions'
 * sum against the whole net's time says how much the rest (adds, affines,
 * pooling, the per-op overhead) costs. Each layer is also timed per item in
 * batches of 8 ("b8"), and the one-op models are run back to back as in the
 * net, where each layer's weights are cold: sequence minus sum is what
 * streaming the weights costs, at batch 1 and per item at batch 8 (the
 * diagnosis behind batched embeddings). The reference point is DESIGN.md
 * §6.1's 3x3 convolution 64->64 on 56x56 (131 GFLOP/s measured there;
 * build/bench/bench_nn measures it again here).
 *
 *   build/bench/bench_layers [MODELS_DIR]     (default: models)
 */
#include "bench_util.h"
#include "face/face_int.h"
#include "nn/nn_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Median CPU ns of one run of m at h x w in batches of `batch` (after
 * warm-up), divided by batch: ns per item; 0 on failure. */
static double time_model(struct fl_nn_model *m, int h, int w, int runs, int batch)
{
    struct fl_err err = {0};
    struct fl_nn_exec *e = fl_nn_exec_new_batch(m, batch, h, w, FL_NN_BACKEND_XNNPACK, 1, &err);
    uint64_t *t;
    double med;
    if (!e) {
        printf("  exec_new failed: %s\n", err.msg);
        return 0;
    }
    t = fl_malloc((size_t)runs * sizeof(*t));
    for (int i = 0; i < 3; i++)
        fl_nn_exec_run(e, NULL);
    for (int i = 0; i < runs; i++) {
        uint64_t c0 = thread_cpu_ns();
        fl_nn_exec_run(e, NULL);
        t[i] = thread_cpu_ns() - c0;
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp_u64);
    med = (double)t[runs / 2] / batch;
    fl_free(t);
    fl_nn_exec_free(e);
    return med;
}

/* PNet executors are made per pyramid level size and cached (24 sizes per
 * thread, detect_mtcnn.c): what the first photo of a new size pays per level,
 * creation and the first run (fresh buffers) against a warm run. Median of 5
 * CPU ns each, for the top levels of a 640x480 photo. */
static void pnet_new_size(struct fl_nn_model *m)
{
    static const int lv[][2] = {{384, 288}, {273, 205}, {194, 146}};
    printf("  %-50s %9s %9s %9s\n", "  PNet executor per new level size", "create", "1st run",
           "warm run");
    for (size_t i = 0; i < sizeof(lv) / sizeof(lv[0]); i++) {
        uint64_t tc[5], tf[5];
        for (int r = 0; r < 5; r++) {
            uint64_t c0 = thread_cpu_ns();
            struct fl_nn_exec *e = fl_nn_exec_new(m, lv[i][0], lv[i][1], FL_NN_BACKEND_XNNPACK, 1,
                                                  NULL);
            uint64_t c1 = thread_cpu_ns();
            if (!e)
                return;
            fl_nn_exec_run(e, NULL);
            tc[r] = c1 - c0;
            tf[r] = thread_cpu_ns() - c1;
            fl_nn_exec_free(e);
        }
        qsort(tc, 5, sizeof(tc[0]), cmp_u64);
        qsort(tf, 5, sizeof(tf[0]), cmp_u64);
        char label[64];
        snprintf(label, sizeof(label), "    %dx%d (ms)", lv[i][0], lv[i][1]);
        printf("  %-50s %9.2f %9.2f %9.2f\n", label, tc[2] / 1e6, tf[2] / 1e6,
               time_model(m, lv[i][0], lv[i][1], 10, 1) / 1e6);
    }
}

struct group {
    char key[96];
    double ns, ns8, macs, wbytes;
    int n;
};

/* Median CPU ns per item of the executors seq[0..n) run back to back (as in
 * the net, so each one's weights are cold), over `runs` passes. */
static double time_seq(struct fl_nn_exec **seq, int n, int batch, int runs)
{
    uint64_t t[30];
    for (int r = 0; r < runs && r < 30; r++) {
        uint64_t c0 = thread_cpu_ns();
        for (int k = 0; k < n; k++)
            fl_nn_exec_run(seq[k], NULL);
        t[r] = thread_cpu_ns() - c0;
    }
    qsort(t, (size_t)(runs < 30 ? runs : 30), sizeof(t[0]), cmp_u64);
    return (double)t[(runs < 30 ? runs : 30) / 2] / batch;
}

int main(int argc, char **argv)
{
    static const struct {
        enum fl__face_net net;
        const char *name;
        int h, w;
    } nets[] = {
        {FL__FACE_NET_PNET, "MTCNN PNet, 384x288 level (640x480 photo, 1st)", 384, 288},
        {FL__FACE_NET_RNET, "MTCNN RNet, one 24x24 candidate", 0, 0},
        {FL__FACE_NET_ONET, "MTCNN ONet, one 48x48 candidate", 0, 0},
        {FL__FACE_NET_LM68, "face-api landmark68 (112)", 0, 0},
        {FL__FACE_NET_DLIB, "dlib ResNet (150)", 0, 0},
        {FL__FACE_NET_MFN, "MobileFaceNet (112)", 0, 0},
    };
    const char *dir = argc > 1 ? argv[1] : "models";
    struct fl_err err = {0};
    struct fl_nn_model *dlib = NULL;
    struct group g[64];
    struct fl_nn_exec *seq[128], *seq8[128];
    int n_g = 0, n_seq = 0, n_seq8 = 0;
    double whole = 0, whole8 = 0, sum = 0, sum8 = 0, macs_all = 0, wbytes_all = 0;

    fl_core_init();
    printf("nets on one core (XNNPACK, CPU time, median of 30 runs)\n");
    printf("  %-50s %9s %9s %9s\n", "net", "MMAC", "ms", "GFLOP/s");
    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
        struct fl_nn_model *m = fl__face_load_net(dir, nets[i].net, &err);
        double ns, macs;
        if (!m) {
            printf("  %s: %s\n", nets[i].name, err.msg);
            return 1;
        }
        macs = (double)fl_nn_model_macs(m, nets[i].h, nets[i].w);
        ns = time_model(m, nets[i].h, nets[i].w, 30, 1);
        printf("  %-50s %9.1f %9.3f %9.1f\n", nets[i].name, macs / 1e6, ns / 1e6,
               ns > 0 ? 2 * macs / ns : 0);
        if (nets[i].net == FL__FACE_NET_PNET)
            pnet_new_size(m);
        if (nets[i].net == FL__FACE_NET_RNET || nets[i].net == FL__FACE_NET_ONET) {
            /* MTCNN's refinement runs its candidates in batches */
            static const int bs[] = {8, 16, 32, 64, 128};
            for (size_t j = 0; j < sizeof(bs) / sizeof(bs[0]); j++) {
                char label[64];
                double nsb = time_model(m, 0, 0, 20, bs[j]);
                snprintf(label, sizeof(label), "  the same, batch %d (ms per item)", bs[j]);
                printf("  %-50s %9s %9.3f %9.1f\n", label, "", nsb / 1e6,
                       nsb > 0 ? 2 * macs / nsb : 0);
            }
        }
        if (nets[i].net == FL__FACE_NET_DLIB || nets[i].net == FL__FACE_NET_MFN) {
            /* the embedding nets per item in batches (fl_face_embed_chips) */
            for (int b = 2; b <= 8; b *= 2) {
                double nsb = time_model(m, 0, 0, 20, b);
                printf("  %-50s %9s %9.3f %9.1f\n",
                       b == 2 ? "  the same, batch 2 (ms per item)"
                              : (b == 4 ? "  the same, batch 4" : "  the same, batch 8"),
                       "", nsb / 1e6, nsb > 0 ? 2 * macs / nsb : 0);
                if (b == 8 && nets[i].net == FL__FACE_NET_DLIB)
                    whole8 = nsb;
            }
        }
        if (nets[i].net == FL__FACE_NET_DLIB) {
            dlib = m;
            whole = ns;
            macs_all = macs;
        } else {
            fl_nn_model_unref(m);
        }
    }

    /* part 2: the dlib ResNet's convolutions one by one */
    for (int i = 0; i < dlib->ir.n_ops; i++) {
        const struct fl__nn_op *op = &dlib->ir.ops[i];
        const int *in;
        struct fl_nn_graph *gr;
        struct fl__nn_op one;
        struct fl_nn_model *m;
        double ns, ns8, macs, wb;
        char key[96];
        int k, x;
        if (op->type != FL__NN_OP_CONV && op->type != FL__NN_OP_FC)
            continue;
        in = dlib->ir.shape[op->a];
        gr = fl_nn_graph_new("one");
        x = fl_nn_input(gr, in[0], in[1], in[2]);
        one = *op;
        one.a = x;
        fl_nn_output(gr, fl__nn_graph_add_op(gr, &one, dlib->ir.blobs[op->wblob].data,
                                             dlib->ir.blobs[op->bblob].data));
        m = fl_nn_model_new(gr, &err);
        if (!m) {
            printf("  op %d: %s\n", i, err.msg);
            continue;
        }
        macs = (double)fl_nn_model_macs(m, 0, 0);
        ns = time_model(m, 0, 0, 50, 1);
        ns8 = time_model(m, 0, 0, 20, 8);
        if (n_seq < 128)
            seq[n_seq] = fl_nn_exec_new(m, 0, 0, FL_NN_BACKEND_XNNPACK, 1, &err);
        n_seq += n_seq < 128 && seq[n_seq];
        if (n_seq8 < 128)
            seq8[n_seq8] = fl_nn_exec_new_batch(m, 8, 0, 0, FL_NN_BACKEND_XNNPACK, 1, &err);
        n_seq8 += n_seq8 < 128 && seq8[n_seq8];
        fl_nn_model_unref(m);
        if (op->type == FL__NN_OP_FC)
            snprintf(key, sizeof(key), "fc %d -> %d", op->n2, op->n);
        else
            snprintf(key, sizeof(key), "conv %dx%d/%d %3dx%-3d %3d -> %3d", op->kh, op->kw, op->sh,
                     in[0], in[1], in[2], op->n);
        for (k = 0; k < n_g && strcmp(g[k].key, key); k++)
            ;
        if (k == n_g && n_g < 64) {
            memset(&g[n_g], 0, sizeof(g[n_g]));
            snprintf(g[n_g].key, sizeof(g[n_g].key), "%s", key);
            n_g++;
        }
        wb = 4.0 * (double)(dlib->ir.blobs[op->wblob].n + dlib->ir.blobs[op->bblob].n);
        if (k < n_g) {
            g[k].ns += ns;
            g[k].ns8 += ns8;
            g[k].macs += macs;
            g[k].wbytes += wb;
            g[k].n++;
        }
        sum += ns;
        sum8 += ns8;
        wbytes_all += wb;
    }
    printf("\ndlib ResNet layer by layer (each op alone, CPU ms summed over its repeats;\n"
           "b8: ms per item in batches of 8)\n");
    printf("  %-40s %4s %9s %7s %9s %9s %9s\n", "layer (input h x w, cin -> cout)", "n", "MMAC",
           "MB", "ms", "GFLOP/s", "b8 ms");
    for (int k = 0; k < n_g; k++)
        printf("  %-40s %4d %9.1f %7.2f %9.3f %9.1f %9.3f\n", g[k].key, g[k].n, g[k].macs / 1e6,
               g[k].wbytes / 1048576.0, g[k].ns / 1e6, 2 * g[k].macs / g[k].ns, g[k].ns8 / 1e6);
    printf("  %-40s %4s %9.1f %7.2f %9.3f %9.1f %9.3f\n", "sum of convolutions and fc", "",
           macs_all / 1e6, wbytes_all / 1048576.0, sum / 1e6, 2 * macs_all / sum, sum8 / 1e6);
    printf("  %-40s %4s %9s %7s %9.3f %9s %9.3f   (%.0f%% of the net)\n",
           "the rest (adds, affines, pools, glue)", "", "", "", (whole - sum) / 1e6, "",
           (whole8 - sum8) / 1e6, 100 * (whole - sum) / whole);
    {
        /* the same one-op models run back to back, as in the net: each
         * layer's weights are then cold (evicted by the other layers'). The
         * difference to the sum above is what streaming the weights from
         * L3/DRAM costs; in batches of 8 it is paid once per 8 items. */
        double cold = time_seq(seq, n_seq, 1, 30), cold8 = time_seq(seq8, n_seq8, 8, 20);
        printf("  %-40s %4s %9s %7s %9.3f %9s %9.3f   (back to back: cold weights)\n",
               "convolutions in sequence", "", "", "", cold / 1e6, "", cold8 / 1e6);
        printf("  %-40s %4s %9s %7s %9.3f %9s %9.3f\n", "  cold-weight cost (sequence - sum)", "",
               "", "", (cold - sum) / 1e6, "", (cold8 - sum8) / 1e6);
        for (int k = 0; k < n_seq; k++)
            fl_nn_exec_free(seq[k]);
        for (int k = 0; k < n_seq8; k++)
            fl_nn_exec_free(seq8[k]);
    }
    fl_nn_model_unref(dlib);
    return 0;
}
