/*
 * exec.c: executors, plan then run (ggml's cplan).
 *
 * fl_nn_exec_new() makes every shape concrete for the requested input size
 * (failing cleanly on a size the graph cannot take, e.g. an FC whose weights
 * do not match the flattened input), allocates every buffer and, for
 * XNNPACK, builds the runtimes. fl_nn_exec_run() then allocates nothing.
 *
 * Batch: an executor runs `batch` independent items per run. Every buffer
 * holds batch items back to back (item b of value v at b * n_elems[v]),
 * shapes and n_elems stay per item. The reference backend runs each op once
 * per item over that item's slice (fl__nn_ref_op_items), so batch N is N
 * batch-1 runs by construction; XNNPACK gets N as the tensors' leading
 * dimension and runs each operator once over all items (the point: every
 * weight is read once per run, not once per item).
 *
 * Buffers: the reference backend gives every value its own buffer (simple,
 * and the reference is for tests). The XNNPACK backend decides itself which
 * values need one (run_xnnpack.c); values internal to an XNNPACK runtime live
 * in XNNPACK's own workspace. Every buffer is 64-byte aligned with
 * XNN_EXTRA_BYTES of slack at the end, which XNNPACK may read past the last
 * element.
 *
 * Threading: an executor belongs to one thread at a time; it holds a
 * reference to its (shared, immutable) model.
 */
#include "nn/nn_int.h"

#include <string.h>
#include <xnnpack.h>

float *fl__nn_buf_alloc(size_t n)
{
    size_t bytes;
    float *p;
    if (!fl_size_mul(n, sizeof(float), &bytes) || !fl_size_add(bytes, XNN_EXTRA_BYTES, &bytes))
        return NULL;
    p = fl_malloc_aligned(bytes, FL__NN_ALIGN);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void fl_nn_exec_free(struct fl_nn_exec *e)
{
    if (!e)
        return;
    if (e->xnn)
        fl__nn_xnn_free(e);
    if (e->buf) {
        for (int v = 0; v < e->m->ir.n_ops; v++)
            fl_free_aligned(e->buf[v]);
    }
    fl_free(e->buf);
    fl_free(e->n_elems);
    fl_free(e->shape);
    fl_nn_model_unref(e->m);
    fl_free(e);
}

float *fl__nn_exec_buf_alloc(const struct fl_nn_exec *e, int v)
{
    size_t n;
    if (!fl_size_mul(e->n_elems[v], (size_t)e->batch, &n))
        return NULL;
    return fl__nn_buf_alloc(n);
}

void fl__nn_ref_op_items(const struct fl_nn_exec *e, int v)
{
    const struct fl__nn_ir *ir = &e->m->ir;
    const struct fl__nn_op *op = &ir->ops[v];
    const bool bin = op->b >= 0;
    for (int i = 0; i < e->batch; i++) {
        const size_t ii = (size_t)i;
        fl__nn_ref_op(ir, op, e->buf[op->a] + ii * e->n_elems[op->a], e->shape[op->a],
                      bin ? e->buf[op->b] + ii * e->n_elems[op->b] : NULL,
                      bin ? e->shape[op->b] : NULL, e->buf[v] + ii * e->n_elems[v], e->shape[v]);
    }
}

struct fl_nn_exec *fl_nn_exec_new(struct fl_nn_model *m, int in_h, int in_w,
                                  enum fl_nn_backend backend, int n_threads, struct fl_err *err)
{
    return fl_nn_exec_new_batch(m, 1, in_h, in_w, backend, n_threads, err);
}

struct fl_nn_exec *fl_nn_exec_new_batch(struct fl_nn_model *m, int batch, int in_h, int in_w,
                                        enum fl_nn_backend backend, int n_threads,
                                        struct fl_err *err)
{
    struct fl_nn_exec *e = NULL;
    const struct fl__nn_ir *ir;
    enum fl_status rc;
    int n;

    if (!m || batch < 1 || batch > FL_NN_MAX_BATCH || in_h < 0 || in_w < 0 || n_threads < 1 ||
        (backend != FL_NN_BACKEND_XNNPACK && backend != FL_NN_BACKEND_REF)) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "nn: exec_new: bad arguments");
        return NULL;
    }
    ir = &m->ir;
    n = ir->n_ops;
    e = fl_calloc(1, sizeof(*e));
    if (!e)
        goto nomem;
    fl_nn_model_ref(m);
    e->m = m;
    e->backend = backend;
    e->batch = batch;
    e->n_threads = n_threads;
    e->shape = fl_calloc((size_t)n, sizeof(*e->shape));
    e->n_elems = fl_calloc((size_t)n, sizeof(*e->n_elems));
    e->buf = fl_calloc((size_t)n, sizeof(*e->buf));
    if (!e->shape || !e->n_elems || !e->buf)
        goto nomem;
    rc = fl__nn_infer_shapes(ir, in_h, in_w, e->shape, err);
    if (rc != FL_OK)
        goto fail;
    for (int v = 0; v < n; v++)
        e->n_elems[v] = (size_t)e->shape[v][0] * e->shape[v][1] * e->shape[v][2];

    if (backend == FL_NN_BACKEND_REF) {
        for (int v = 0; v < n; v++) {
            e->buf[v] = fl__nn_exec_buf_alloc(e, v);
            if (!e->buf[v])
                goto nomem;
        }
    } else {
        rc = fl__nn_xnn_plan(e, err);
        if (rc != FL_OK)
            goto fail;
    }
    return e;
nomem:
    fl_err_set(err, FL_ERR_NOMEM, "nn: out of memory planning '%s'", m->ir.name);
fail:
    fl_nn_exec_free(e);
    return NULL;
}

int fl_nn_exec_batch(const struct fl_nn_exec *e)
{
    return e->batch;
}

float *fl_nn_exec_input(struct fl_nn_exec *e)
{
    return e->buf[e->m->ir.input];
}

enum fl_status fl_nn_exec_run(struct fl_nn_exec *e, struct fl_err *err)
{
    const struct fl__nn_ir *ir = &e->m->ir;
    if (e->backend == FL_NN_BACKEND_XNNPACK)
        return fl__nn_xnn_run(e, err);
    for (int v = 0; v < ir->n_ops; v++) {
        if (ir->ops[v].type != FL__NN_OP_INPUT)
            fl__nn_ref_op_items(e, v);
    }
    return FL_OK;
}

const float *fl_nn_exec_output(struct fl_nn_exec *e, int i, int out_shape[3])
{
    int v;
    if (i < 0 || i >= e->m->ir.n_outputs)
        return NULL;
    v = e->m->ir.outputs[i];
    if (out_shape)
        memcpy(out_shape, e->shape[v], 3 * sizeof(int));
    return e->buf[v];
}
