/*
 * nn_int.h: the inference engine's internals, shared by the .c files in src/nn only.
 *
 * The IR is a flat, topologically ordered list of ops. Every op produces
 * exactly one value and the value id IS the op index, so an op can only read
 * values made before it (no cycles by construction). The graph input is an op
 * of type FL__NN_OP_INPUT. Weights live in blobs (64-byte aligned float32
 * arrays owned by the IR) referenced by index from the ops; their length is
 * always the one implied by the op's parameters (checked when added).
 *
 * The same struct fl__nn_ir backs the graph under construction and the
 * finished model: fl_nn_model_new() moves it out of the graph. The file
 * loader (model.c) rebuilds a model by replaying the ops through
 * fl__nn_graph_add_op(), so a loaded file gets exactly the same validation as
 * a graph built in code.
 *
 * Shapes are {h, w, c}. While building, h and w may be 0 ("unknown": the
 * graph input was declared with a dynamic size); fl_nn_exec_new() makes them
 * concrete with fl__nn_infer_shapes().
 */
#ifndef FL_NN_INT_H
#define FL_NN_INT_H

#include "nn/nn.h"

#include <stdatomic.h>

/* Op types. Persisted in .flm files: append-only, explicit numbers. */
enum fl__nn_op_type {
    FL__NN_OP_INPUT = 0,
    FL__NN_OP_CONV = 1,
    FL__NN_OP_DWCONV = 2,
    FL__NN_OP_FC = 3,
    FL__NN_OP_ADD = 4,
    FL__NN_OP_MUL = 5,
    FL__NN_OP_AFFINE = 6, /* channel affine */
    FL__NN_OP_PRELU = 7,
    FL__NN_OP_ACT = 8,
    FL__NN_OP_MAXPOOL = 9,
    FL__NN_OP_AVGPOOL = 10,
    FL__NN_OP_GAVGPOOL = 11,
    FL__NN_OP_PAD = 12,
    FL__NN_OP_CONCAT = 13,
    FL__NN_OP_SOFTMAX = 14,
    FL__NN_OP_RESIZE = 15,
    FL__NN_OP_COUNT_ /* never persisted */
};

/* Largest spatial size or channel count we accept anywhere (keeps every
 * product of a few dims far from overflow in int64 and sane in memory). */
#define FL__NN_MAX_DIM 65536
/* Largest kernel side. */
#define FL__NN_MAX_KERNEL 64
/* Largest number of elements of one value or one blob. */
#define FL__NN_MAX_ELEMS ((size_t)1 << 30)
/* Alignment of blobs and executor buffers, bytes. */
#define FL__NN_ALIGN 64

/* One op. Field use by type (unused fields are 0, blob ids -1):
 *   INPUT:    h, w, c                      (h or w may be 0 = dynamic)
 *   CONV:     a; n = cout; kh kw sh sw pad act alpha; wblob [n][kh][kw][cin], bblob [n]
 *   DWCONV:   a; n = mult; kh kw sh sw pad act alpha; wblob [kh][kw][cin*n], bblob [cin*n]
 *   FC:       a; n = cout; n2 = in (flattened input size); act alpha; wblob [n][n2], bblob [n]
 *   ADD:      a, b; act alpha
 *   MUL:      a, b
 *   AFFINE:   a; wblob = scale [c], bblob = shift [c] (both materialised)
 *   PRELU:    a; wblob = slope [c]
 *   ACT:      a; act alpha
 *   MAXPOOL, AVGPOOL: a; kh kw sh sw pad
 *   GAVGPOOL, SOFTMAX: a
 *   PAD:      a; pad; n = channels before, n2 = channels after
 *   CONCAT:   a, b
 *   RESIZE:   a; h, w = output size; n = half_pixel (0/1)
 * Bias blobs are always materialised (zeros when the caller passed NULL), so
 * backends never special-case a missing bias. */
struct fl__nn_op {
    int32_t type; /* enum fl__nn_op_type */
    int32_t a, b; /* input value ids (b = -1 for unary ops; a = -1 for INPUT) */
    int32_t h, w, c;
    int32_t n, n2;
    int32_t kh, kw, sh, sw;
    struct fl_nn_pad4 pad;
    int32_t act;          /* enum fl_nn_act */
    float alpha;          /* LEAKY slope */
    int32_t wblob, bblob; /* blob ids or -1 */
};

struct fl__nn_blob {
    float *data; /* owned; fl_malloc_aligned(FL__NN_ALIGN) with FL__NN_ALIGN bytes of
                    zeroed slack after n floats (XNNPACK over-reads); fl_free_aligned() */
    size_t n;    /* floats */
};

struct fl__nn_kv {
    char *key, *value; /* owned */
};

/* The IR shared by graphs and models. */
struct fl__nn_ir {
    char *name;            /* owned */
    struct fl__nn_op *ops; /* owned; n_ops used, cap_ops allocated */
    int n_ops, cap_ops;
    int (*shape)[3];           /* owned; per value {h, w, c} as declared (0 = dynamic) */
    struct fl__nn_blob *blobs; /* owned */
    int n_blobs, cap_blobs;
    int *outputs; /* owned; value ids */
    int n_outputs, cap_outputs;
    struct fl__nn_kv *meta; /* owned */
    int n_meta, cap_meta;
    int input; /* value id of the INPUT op, -1 before fl_nn_input() */
};

struct fl_nn_graph {
    struct fl__nn_ir ir;
    struct fl_err err; /* sticky first error; code FL_OK while none */
};

struct fl_nn_model {
    struct fl__nn_ir ir; /* immutable after fl_nn_model_new() */
    atomic_int refs;
};

/* Free everything the IR owns and zero it. */
void fl__nn_ir_fini(struct fl__nn_ir *ir);

/* Add an op described by *op (its type, inputs and parameters; wblob/bblob
 * ignored) with weight data w and bias/shift data b (either may be NULL where
 * the op allows: a NULL bias becomes zeros, a NULL affine scale ones). Checks
 * every parameter and the input shapes, copies the data and infers the output
 * shape. Returns the new value id, or -1 with the sticky error set. */
int fl__nn_graph_add_op(struct fl_nn_graph *g, const struct fl__nn_op *op, const float *w,
                        const float *b);

/* Number of floats the op's weight (which = 0) or bias (which = 1) blob must
 * hold given its input channel count cin (the FC's in comes from the op); 0 if
 * the op has no such blob. Call only on ops that passed validation. */
size_t fl__nn_blob_len(const struct fl__nn_op *op, int cin, int which);

/* Output shape of op given its input shapes (in1 NULL for unary ops). With
 * allow_unknown, h/w 0 in the inputs are "unknown" and propagate; otherwise
 * every dim must come out >= 1. FL_ERR_INVALID_ARG with a message on any
 * mismatch. */
enum fl_status fl__nn_op_shape(const struct fl__nn_op *op, const int in0[3], const int in1[3],
                               bool allow_unknown, int out[3], struct fl_err *err);

/* Concrete shapes of every value for an input of in_h x in_w (0 = declared).
 * shapes: n_ops entries. */
enum fl_status fl__nn_infer_shapes(const struct fl__nn_ir *ir, int in_h, int in_w, int (*shapes)[3],
                                   struct fl_err *err);

/* ---- reference kernels (run_ref.c), also the XNNPACK backend's fallback ---- */

/* Run one op (not INPUT) with the reference kernel. x0/x1 are the inputs with
 * shapes s0/s1 (x1, s1 NULL for unary ops), y the output of shape sy. */
void fl__nn_ref_op(const struct fl__nn_ir *ir, const struct fl__nn_op *op, const float *x0,
                   const int s0[3], const float *x1, const int s1[3], float *y, const int sy[3]);

/* ---- backends (exec.c dispatches) ---- */

struct fl__nn_xnn; /* run_xnnpack.c's per-executor state */

struct fl_nn_exec {
    struct fl_nn_model *m; /* holds a reference */
    enum fl_nn_backend backend;
    int batch; /* items per run, 1..FL_NN_MAX_BATCH */
    int n_threads;
    int (*shape)[3];        /* owned; concrete shape per value, per item */
    size_t *n_elems;        /* owned; elements per value, per item */
    float **buf;            /* owned array; buf[v] owned (fl_free_aligned), batch * n_elems[v]
                               floats (item i at i * n_elems[v]), or NULL if internal */
    struct fl__nn_xnn *xnn; /* XNNPACK state, NULL for REF */
};

/* XNNPACK backend: plan e (e->shape filled, e->buf all NULL on entry): choose
 * which values need buffers, allocate them (with XNN_EXTRA_BYTES slack) and
 * build the runtimes. On failure everything it made is freed by
 * fl__nn_xnn_free(). */
enum fl_status fl__nn_xnn_plan(struct fl_nn_exec *e, struct fl_err *err);
enum fl_status fl__nn_xnn_run(struct fl_nn_exec *e, struct fl_err *err);
void fl__nn_xnn_free(struct fl_nn_exec *e);

/* Allocate an executor buffer of n floats plus XNNPACK's slack, aligned and
 * zeroed. NULL on out-of-memory or size overflow. */
float *fl__nn_buf_alloc(size_t n);
/* The same for value v of e: batch * n_elems[v] floats. */
float *fl__nn_exec_buf_alloc(const struct fl_nn_exec *e, int v);
/* Run op v (not INPUT) of e with the reference kernel on every item of the
 * batch, reading and writing e's buffers (all of them allocated). */
void fl__nn_ref_op_items(const struct fl_nn_exec *e, int v);

#endif /* FL_NN_INT_H */
