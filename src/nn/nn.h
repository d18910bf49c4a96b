/*
 * nn.h: the inference engine's library-internal interface (used by face/).
 *
 * One internal representation (IR) for every network FaceLink runs, whatever
 * it was shipped as (face-api weight manifests, TFLite flatbuffers, TFJS graph
 * JSON). Importers (nn/import_*.c) turn a source format into a graph with the
 * builder below, folding what can be folded at import (batch-norm and "scale
 * layers" into conv weights and bias, PReLU patterns into one PRELU op, uint8
 * or fp16 weights into float32, TF SAME padding into explicit pads). The graph
 * then becomes an immutable, shareable model; each thread makes its own
 * executor for a concrete input size and runs it.
 *
 * Plan, then run (ggml's cplan): fl_nn_exec_new() infers shapes, allocates
 * every buffer and builds the backend runtime; fl_nn_exec_run() allocates
 * nothing.
 *
 * Batches: the graph describes one item; an executor is planned for a batch
 * of N items (fl_nn_exec_new_batch; fl_nn_exec_new is N = 1) and runs all N
 * in one pass. Items are independent: every op works on each item alone (the
 * FC flattens each item's h*w*c values, softmax and pooling stay within an
 * item). Why: a face embedding net's ~22 MB of weights do not fit the L2
 * cache, so at N = 1 every weight is fetched from L3/DRAM once per face;
 * at N > 1 once per N faces.
 *
 * Layout and conventions:
 *   - Activations are float32 NHWC, N items back to back in one buffer.
 *     Shapes are per item, {h, w, c}. A vector (FC output) is {1, 1, c}.
 *   - Conv weights are OHWI ([cout][kh][kw][cin]), depthwise weights are
 *     [kh][kw][c*mult] (TFLite's layout without the leading 1), FC weights
 *     are [out][in] where `in` runs over the flattened NHWC input (h, w, c
 *     order). Importers convert to these layouts.
 *   - Padding is explicit: {top, left, bottom, right}. TF "SAME" with stride
 *     s puts the odd pixel at the bottom/right; importers resolve it.
 *   - Builder functions return a value id (>= 0), or -1 after an error. The
 *     first error is sticky in the graph (SQLite's sticky OOM idea): later
 *     calls return -1 at once and fl_nn_model_new() reports that error, so an
 *     importer checks once at the end instead of after every call.
 *   - The builder copies weight data; callers keep ownership of what they pass.
 *
 * Backends: XNNPACK (the default; Debian's libxnnpack, a 2022 snapshot, kept
 * behind this interface) and a plain scalar reference used by tests to check
 * the fast path. Both take the same model.
 *
 * Threading: a graph is single-threaded while built. A model is immutable and
 * may be shared by any number of threads (reference-counted). An executor
 * belongs to one thread at a time.
 */
#ifndef FL_NN_H
#define FL_NN_H

#include "core/core.h"

/* ============================== Graph building ============================== */

enum fl_nn_act {
    FL_NN_ACT_NONE = 0,
    FL_NN_ACT_RELU = 1,
    FL_NN_ACT_RELU6 = 2,   /* clamp to [0, 6] */
    FL_NN_ACT_LEAKY = 3,   /* x > 0 ? x : alpha * x; alpha in the op */
    FL_NN_ACT_SIGMOID = 4,
    FL_NN_ACT_TANH = 5,
};

struct fl_nn_pad4 {
    int top, left, bottom, right;
};

struct fl_nn_graph;

/* A new empty graph; NULL on out-of-memory. Free with fl_nn_graph_free()
 * unless it was handed to fl_nn_model_new(). */
struct fl_nn_graph *fl_nn_graph_new(const char *name);
void fl_nn_graph_free(struct fl_nn_graph *g);
/* Record an error in the graph (for importers that find bad input); returns -1. */
int fl_nn_graph_fail(struct fl_nn_graph *g, enum fl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Graph input of h x w x c. h or w may be 0 for "given at fl_nn_exec_new()"
 * (fully convolutional nets such as MTCNN's PNet or the tiny YOLO detector).
 * A graph has exactly one input. */
int fl_nn_input(struct fl_nn_graph *g, int h, int w, int c);

/* Convolution. w: OHWI [cout][kh][kw][cin]; bias: [cout] or NULL (zeros). */
int fl_nn_conv2d(struct fl_nn_graph *g, int x, const float *w, const float *bias, int cout,
                 int kh, int kw, int stride_h, int stride_w, struct fl_nn_pad4 pad,
                 enum fl_nn_act act, float act_alpha);
/* Depthwise convolution. w: [kh][kw][cin*mult]; bias: [cin*mult] or NULL. */
int fl_nn_dwconv2d(struct fl_nn_graph *g, int x, const float *w, const float *bias, int mult,
                   int kh, int kw, int stride_h, int stride_w, struct fl_nn_pad4 pad,
                   enum fl_nn_act act, float act_alpha);
/* Fully connected over the flattened input (h*w*c values in NHWC order).
 * w: [cout][in]; bias: [cout] or NULL. Output {1, 1, cout}. When x's h/w are
 * dynamic (unknown until fl_nn_exec_new()), in = c: the input must then be
 * 1 x 1 at run time, and fl_nn_exec_new() fails with FL_ERR_INVALID_ARG for
 * a size whose flattened length differs. */
int fl_nn_fc(struct fl_nn_graph *g, int x, const float *w, const float *bias, int cout,
             enum fl_nn_act act, float act_alpha);
/* Element-wise a + b (same shape), then act. */
int fl_nn_add(struct fl_nn_graph *g, int a, int b, enum fl_nn_act act, float act_alpha);
/* Element-wise a * b (same shape). */
int fl_nn_mul(struct fl_nn_graph *g, int a, int b);
/* Per-channel affine y = x * scale[c] + shift[c] (either may be NULL = 1 / 0).
 * Importers should fold it into the preceding conv when they can; this op is
 * for the cases where they cannot (e.g. input normalisation). */
int fl_nn_channel_affine(struct fl_nn_graph *g, int x, const float *scale, const float *shift);
/* PReLU with a per-channel slope [c]. */
int fl_nn_prelu(struct fl_nn_graph *g, int x, const float *slope);
/* Activation as its own op. */
int fl_nn_activation(struct fl_nn_graph *g, int x, enum fl_nn_act act, float act_alpha);
/* Pooling. Padded cells are ignored (max: -inf; avg: not counted, TF style).
 * Each padding side must be smaller than the window on its axis (so every
 * window sees a real pixel). */
int fl_nn_maxpool(struct fl_nn_graph *g, int x, int kh, int kw, int stride_h, int stride_w,
                  struct fl_nn_pad4 pad);
int fl_nn_avgpool(struct fl_nn_graph *g, int x, int kh, int kw, int stride_h, int stride_w,
                  struct fl_nn_pad4 pad);
/* Mean over h and w: output {1, 1, c}. */
int fl_nn_global_avgpool(struct fl_nn_graph *g, int x);
/* Zero padding in space and in channels (face-api's residualDown pads both). */
int fl_nn_pad(struct fl_nn_graph *g, int x, struct fl_nn_pad4 pad, int chan_before,
              int chan_after);
/* Concatenate along channels (same h, w). */
int fl_nn_concat(struct fl_nn_graph *g, int a, int b);
/* Softmax over channels at every (h, w). */
int fl_nn_softmax(struct fl_nn_graph *g, int x);
/* Bilinear resize to out_h x out_w (TF half_pixel_centers semantics when
 * half_pixel is true, else TF align_corners=false legacy semantics). */
int fl_nn_resize_bilinear(struct fl_nn_graph *g, int x, int out_h, int out_w, bool half_pixel);
/* Mark x as the next graph output (outputs are numbered from 0). */
int fl_nn_output(struct fl_nn_graph *g, int x);

/* Metadata (model id, input size, preprocessing, provenance): string pairs
 * stored with the model and in its file. Copies both. */
int fl_nn_meta_set(struct fl_nn_graph *g, const char *key, const char *value);

/* ================================== Models ================================== */

struct fl_nn_model;

/* Validate the graph and turn it into an immutable model, consuming g (also
 * on failure). Reports a sticky builder error if there was one. Refcount 1. */
struct fl_nn_model *fl_nn_model_new(struct fl_nn_graph *g, struct fl_err *err);
void fl_nn_model_ref(struct fl_nn_model *m);
/* Drop a reference; frees at zero. NULL is a no-op. */
void fl_nn_model_unref(struct fl_nn_model *m);
const char *fl_nn_model_name(const struct fl_nn_model *m);
/* Metadata value or NULL. Borrowed for the model's lifetime. */
const char *fl_nn_model_meta(const struct fl_nn_model *m, const char *key);
int fl_nn_model_n_outputs(const struct fl_nn_model *m);
/* Total multiply-accumulates (conv, depthwise, FC) for an input of h x w
 * (0, 0 = the declared size); 0 when the graph cannot take that size. */
uint64_t fl_nn_model_macs(const struct fl_nn_model *m, int h, int w);

/* The model file (".flm"): a self-describing container (magic, version,
 * metadata, op list with parameters, aligned float32 blobs). The loader
 * checks every offset and length against the file size and reports
 * FL_ERR_CORRUPT for anything that does not add up. */
enum fl_status fl_nn_model_save(const struct fl_nn_model *m, const char *path, struct fl_err *err);
struct fl_nn_model *fl_nn_model_load(const char *path, struct fl_err *err);
/* The same from memory (fuzzing, tests). */
struct fl_nn_model *fl_nn_model_load_mem(const void *p, size_t n, struct fl_err *err);

/* ================================ Execution ================================ */

enum fl_nn_backend {
    FL_NN_BACKEND_XNNPACK = 0, /* default */
    FL_NN_BACKEND_REF = 1,     /* scalar reference, for tests */
};

struct fl_nn_exec;

/* Largest batch an executor takes. */
#define FL_NN_MAX_BATCH 1024

/* Plan execution of m for batches of `batch` items (1..FL_NN_MAX_BATCH), each
 * an input of in_h x in_w (0, 0 = the declared size). n_threads: intra-op
 * threads (1 = the caller's thread only; the reference backend always uses
 * one). Holds a reference to m. Not thread-safe: one executor per thread.
 * Memory: every planned buffer scales with batch (XNNPACK's packed weights
 * do not). NULL with FL_ERR_INVALID_ARG for a bad batch or a size the graph
 * cannot take, FL_ERR_NOMEM, or FL_ERR_INTERNAL if XNNPACK refuses the plan.
 * Every run computes all `batch` items; fill unused ones with anything
 * finite (their outputs are ignored, they cost the same time). */
struct fl_nn_exec *fl_nn_exec_new_batch(struct fl_nn_model *m, int batch, int in_h, int in_w,
                                        enum fl_nn_backend backend, int n_threads,
                                        struct fl_err *err);
/* fl_nn_exec_new_batch() with batch 1. */
struct fl_nn_exec *fl_nn_exec_new(struct fl_nn_model *m, int in_h, int in_w,
                                  enum fl_nn_backend backend, int n_threads, struct fl_err *err);
/* Free e (NULL is a no-op); drops its model reference. */
void fl_nn_exec_free(struct fl_nn_exec *e);
/* The batch size e was planned for. */
int fl_nn_exec_batch(const struct fl_nn_exec *e);
/* The input buffer to fill before each run: batch * h*w*c floats, NHWC,
 * item i at offset i * h*w*c. Borrowed for e's lifetime (never moves). */
float *fl_nn_exec_input(struct fl_nn_exec *e);
/* Run all items. FL_OK, or FL_ERR_INTERNAL if XNNPACK fails. Allocates
 * nothing; one thread at a time per executor. */
enum fl_status fl_nn_exec_run(struct fl_nn_exec *e, struct fl_err *err);
/* Output i after a run: batch * (h*w*c) floats, item-major (item j at
 * j * h*w*c); the per-item shape {h, w, c} into out_shape when not NULL.
 * NULL for a bad i. Borrowed until the next run or free. */
const float *fl_nn_exec_output(struct fl_nn_exec *e, int i, int out_shape[3]);

#endif /* FL_NN_H */
