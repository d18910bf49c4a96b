/*
 * run_xnnpack.c: the XNNPACK backend (the default).
 *
 * Debian ships a 2022 XNNPACK snapshot (0.0~git20220216); we use its
 * subgraph API, which packs weights once at runtime creation and fuses
 * clamps into the preceding op.
 *
 * Plan (fl__nn_xnn_plan, once per executor, i.e. per model and input size):
 *   1. Ops no output depends on are dropped. Each remaining op is either
 *      XNNPACK-capable or a fallback op run by the scalar reference kernel
 *      (run_ref.c). The snapshot lacks concatenation and tanh; both are
 *      expressed with other nodes (below), so the only fallback ops left are
 *      1x1 pools, which XNNPACK refuses (checked: status 2).
 *   2. Consecutive XNNPACK-capable ops form a segment; each segment becomes
 *      one xnn subgraph -> one xnn runtime. The executor runs the steps
 *      (runtimes and fallback ops) in order.
 *   3. A value gets a buffer of its own (64-byte aligned, XNN_EXTRA_BYTES of
 *      slack) when it crosses a step boundary: the graph input, graph
 *      outputs, values read or written by fallback ops, values used by a
 *      later segment. Such values are external values of the runtimes; the
 *      rest live in XNNPACK's workspace. Pointers never change, so each
 *      runtime is set up (xnn_setup_runtime) once, at plan time.
 *
 * Batch: every activation tensor is [batch, h, w, c]; each XNNPACK operator
 * runs once over all items (its GEMM rows span items), which is what lets a
 * batch read each packed weight once per run instead of once per item.
 * Fallback ops run per item (fl__nn_ref_op_items).
 *
 * Lowering notes (checked against the reference in test_nn_xnn.c):
 *   - conv: filter [cout][kh][kw][cin] is XNNPACK's OHWI; depthwise filter
 *     [1][kh][kw][cin*mult] with depth_multiplier; channel ci*mult + m is
 *     XNNPACK's (and TFLite's) order.
 *   - fused NONE/RELU/RELU6 become output_min/max; LEAKY, SIGMOID and TANH
 *     extra nodes on an internal value.
 *   - FC over an input of more than one pixel: a static reshape to
 *     [batch, 1, 1, h*w*c] first (NHWC flattening order is memory order, and
 *     items are contiguous, so each item flattens on its own row).
 *   - channel affine: multiply by a static [c] tensor, then add a static [c]
 *     tensor (numpy broadcasting).
 *   - pooling: XNNPACK's max pooling ignores padding and its average pooling
 *     divides by the number of real pixels, which is our semantics.
 *   - tanh(x) = 2 * sigmoid(2x) - 1 (multiply by a broadcast static scalar,
 *     sigmoid, multiply, add); within the tests' NMSE bound.
 *   - concat(a, b) = pad(a, channels after) + pad(b, channels before): exact,
 *     since v + 0 = v.
 *   - resize: no flag = half-pixel centres; XNN_FLAG_TENSORFLOW_LEGACY_MODE =
 *     TF's legacy src = dst * in / out.
 *   - static data (weights, biases, slopes, affine vectors) points into the
 *     model's blobs: immutable and alive as long as the executor holds its
 *     model reference. XNNPACK packs conv/FC weights into its own memory per
 *     runtime, so several executors on one model each pack their own copy.
 *
 * XNNPACK's own allocations do not go through fl_malloc (its allocator hook
 * would make its process-wide init state look like a leak in tests); they
 * are bounded by the model size.
 *
 * Threading: xnn_initialize() runs once (pthread_once). An executor owns its
 * runtimes and, when n_threads > 1, its own pthreadpool (n_threads threads,
 * the caller's included), shared by its runtimes and created with
 * XNN_FLAG_YIELD_WORKERS so idle workers sleep instead of spinning between
 * runs (a server runs many executors). Runtimes of different executors run
 * concurrently without locks.
 */
#include "nn/nn_int.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <xnnpack.h>

struct step {
    int op;           /* fallback op's value id, or -1 for a runtime */
    xnn_runtime_t rt; /* owned when op == -1 */
};

struct fl__nn_xnn {
    pthreadpool_t pool; /* owned; NULL for one thread */
    struct step *steps; /* owned */
    int n_steps;
};

static pthread_once_t xnn_once = PTHREAD_ONCE_INIT;
static enum xnn_status xnn_init_status = xnn_status_uninitialized;

/* pthread_once body: initialise XNNPACK with its default allocator. */
static void xnn_init_once(void)
{
    xnn_init_status = xnn_initialize(NULL);
}

/* True if the op runs inside XNNPACK, false if it is a fallback op. */
static bool xnn_capable(const struct fl__nn_op *op)
{
    switch (op->type) {
    case FL__NN_OP_INPUT:
        return false;
    case FL__NN_OP_MAXPOOL:
    case FL__NN_OP_AVGPOOL:
        return op->kh * op->kw > 1;
    default:
        return true;
    }
}

/* output_min/max of a fused activation XNNPACK can clamp (NONE, RELU, RELU6);
 * other activations get min/max = -inf/+inf plus a separate node. */
static void act_range(int act, float *lo, float *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    if (act == FL_NN_ACT_RELU || act == FL_NN_ACT_RELU6)
        *lo = 0.0f;
    if (act == FL_NN_ACT_RELU6)
        *hi = 6.0f;
}

/* Activations that need their own node(s) after the op. */
static bool act_needs_node(int act)
{
    return act == FL_NN_ACT_LEAKY || act == FL_NN_ACT_SIGMOID || act == FL_NN_ACT_TANH;
}

/* Scalar constants for tanh(x) = 2 * sigmoid(2x) - 1, as 1-element static
 * tensors broadcast by multiply2/add2. Padded to 16 floats: XNNPACK may read
 * XNN_EXTRA_BYTES past static data. */
static const float k_two[16] = {2.0f};
static const float k_minus_one[16] = {-1.0f};

/* Building one segment's subgraph. */
struct seg_build {
    struct fl_nn_exec *e;
    xnn_subgraph_t sg;
    uint32_t *xid;                  /* per value: xnn id in this subgraph or XNN_INVALID_VALUE_ID */
    struct xnn_external_value *ext; /* external values of this segment */
    uint32_t n_ext;
};

/* A 4D fp32 tensor value [batch, h, w, c]. */
static enum xnn_status def_act4(struct seg_build *b, const int s[3], uint32_t ext_id,
                                uint32_t flags, uint32_t *out)
{
    size_t dims[4] = {(size_t)b->e->batch, (size_t)s[0], (size_t)s[1], (size_t)s[2]};
    return xnn_define_tensor_value(b->sg, xnn_datatype_fp32, 4, dims, NULL, ext_id, flags, out);
}

/* A static fp32 tensor of n_dims dims over model memory. */
static enum xnn_status def_static(struct seg_build *b, size_t n_dims, const size_t *dims,
                                  const float *data, uint32_t *out)
{
    return xnn_define_tensor_value(b->sg, xnn_datatype_fp32, n_dims, dims, data,
                                   XNN_INVALID_VALUE_ID, 0, out);
}

/* The xnn id of value v in this segment, defining it as an external input the
 * first time (it was produced outside the segment, so it has a buffer). */
static enum xnn_status use_value(struct seg_build *b, int v, uint32_t *out)
{
    enum xnn_status st;
    if (b->xid[v] != XNN_INVALID_VALUE_ID) {
        *out = b->xid[v];
        return xnn_status_success;
    }
    FL_ASSERT(b->e->buf[v] != NULL);
    st = def_act4(b, b->e->shape[v], b->n_ext, XNN_VALUE_FLAG_EXTERNAL_INPUT, &b->xid[v]);
    if (st != xnn_status_success)
        return st;
    b->ext[b->n_ext].id = b->xid[v];
    b->ext[b->n_ext].data = b->e->buf[v];
    b->n_ext++;
    *out = b->xid[v];
    return xnn_status_success;
}

/* Define the output value v of an op in this segment: external output if it
 * has a buffer, internal otherwise. */
static enum xnn_status make_output(struct seg_build *b, int v, uint32_t *out)
{
    enum xnn_status st;
    if (b->e->buf[v]) {
        st = def_act4(b, b->e->shape[v], b->n_ext, XNN_VALUE_FLAG_EXTERNAL_OUTPUT, &b->xid[v]);
        if (st != xnn_status_success)
            return st;
        b->ext[b->n_ext].id = b->xid[v];
        b->ext[b->n_ext].data = b->e->buf[v];
        b->n_ext++;
    } else {
        st = def_act4(b, b->e->shape[v], XNN_INVALID_VALUE_ID, 0, &b->xid[v]);
        if (st != xnn_status_success)
            return st;
    }
    *out = b->xid[v];
    return xnn_status_success;
}

/* y = tanh(t) as 2 * sigmoid(2t) - 1 (the snapshot has no tanh node). */
static enum xnn_status define_tanh(struct seg_build *b, const int so[3], uint32_t t, uint32_t y)
{
    size_t one[1] = {1};
    uint32_t m1, sg, m2, c2, cm1;
    enum xnn_status st = def_static(b, 1, one, k_two, &c2);
    if (st == xnn_status_success)
        st = def_static(b, 1, one, k_minus_one, &cm1);
    if (st == xnn_status_success)
        st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &m1);
    if (st == xnn_status_success)
        st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &sg);
    if (st == xnn_status_success)
        st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &m2);
    if (st == xnn_status_success)
        st = xnn_define_multiply2(b->sg, -INFINITY, INFINITY, t, c2, m1, 0);
    if (st == xnn_status_success)
        st = xnn_define_sigmoid(b->sg, m1, sg, 0);
    if (st == xnn_status_success)
        st = xnn_define_multiply2(b->sg, -INFINITY, INFINITY, sg, c2, m2, 0);
    if (st == xnn_status_success)
        st = xnn_define_add2(b->sg, -INFINITY, INFINITY, m2, cm1, y, 0);
    return st;
}

/* Lower op v into the segment's subgraph. */
static enum xnn_status lower_op(struct seg_build *b, int v)
{
    const struct fl__nn_ir *ir = &b->e->m->ir;
    const struct fl__nn_op *op = &ir->ops[v];
    const int *si = b->e->shape[op->a], *so = b->e->shape[v];
    const float *wd = op->wblob >= 0 ? ir->blobs[op->wblob].data : NULL;
    const float *bd = op->bblob >= 0 ? ir->blobs[op->bblob].data : NULL;
    uint32_t x, x2 = XNN_INVALID_VALUE_ID, y, t, wid, bid;
    bool act_node = act_needs_node(op->act);
    float lo, hi;
    enum xnn_status st;

    act_range(op->act, &lo, &hi);
    st = use_value(b, op->a, &x);
    if (st == xnn_status_success && op->b >= 0)
        st = use_value(b, op->b, &x2);
    if (st != xnn_status_success)
        return st;
    st = make_output(b, v, &y);
    if (st != xnn_status_success)
        return st;
    /* t: where the main node writes; the activation node then maps t -> y */
    t = y;
    if (act_node && op->type != FL__NN_OP_ACT) {
        st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &t);
        if (st != xnn_status_success)
            return st;
    }

    switch (op->type) {
    case FL__NN_OP_CONV: {
        size_t wdims[4] = {(size_t)op->n, (size_t)op->kh, (size_t)op->kw, (size_t)si[2]};
        size_t bdims[1] = {(size_t)op->n};
        st = def_static(b, 4, wdims, wd, &wid);
        if (st == xnn_status_success)
            st = def_static(b, 1, bdims, bd, &bid);
        if (st == xnn_status_success)
            st = xnn_define_convolution_2d(
                b->sg, (uint32_t)op->pad.top, (uint32_t)op->pad.right, (uint32_t)op->pad.bottom,
                (uint32_t)op->pad.left, (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->sh,
                (uint32_t)op->sw, 1, 1, 1, (size_t)si[2], (size_t)op->n, lo, hi, x, wid, bid, t, 0);
        break;
    }
    case FL__NN_OP_DWCONV: {
        size_t oc = (size_t)si[2] * (size_t)op->n;
        size_t wdims[4] = {1, (size_t)op->kh, (size_t)op->kw, oc};
        size_t bdims[1] = {oc};
        st = def_static(b, 4, wdims, wd, &wid);
        if (st == xnn_status_success)
            st = def_static(b, 1, bdims, bd, &bid);
        if (st == xnn_status_success)
            st = xnn_define_depthwise_convolution_2d(
                b->sg, (uint32_t)op->pad.top, (uint32_t)op->pad.right, (uint32_t)op->pad.bottom,
                (uint32_t)op->pad.left, (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->sh,
                (uint32_t)op->sw, 1, 1, (uint32_t)op->n, (size_t)si[2], lo, hi, x, wid, bid, t, 0);
        break;
    }
    case FL__NN_OP_FC: {
        size_t wdims[2] = {(size_t)op->n, (size_t)op->n2};
        size_t bdims[1] = {(size_t)op->n};
        uint32_t xin = x;
        if (si[0] * si[1] > 1) {
            size_t flat[4] = {(size_t)b->e->batch, 1, 1, (size_t)op->n2};
            st = xnn_define_tensor_value(b->sg, xnn_datatype_fp32, 4, flat, NULL,
                                         XNN_INVALID_VALUE_ID, 0, &xin);
            if (st == xnn_status_success)
                st = xnn_define_static_reshape(b->sg, 4, flat, x, xin, 0);
            if (st != xnn_status_success)
                break;
        }
        st = def_static(b, 2, wdims, wd, &wid);
        if (st == xnn_status_success)
            st = def_static(b, 1, bdims, bd, &bid);
        if (st == xnn_status_success)
            st = xnn_define_fully_connected(b->sg, lo, hi, xin, wid, bid, t, 0);
        break;
    }
    case FL__NN_OP_ADD:
        st = xnn_define_add2(b->sg, lo, hi, x, x2, t, 0);
        break;
    case FL__NN_OP_MUL:
        st = xnn_define_multiply2(b->sg, -INFINITY, INFINITY, x, x2, t, 0);
        break;
    case FL__NN_OP_AFFINE: {
        size_t cdims[1] = {(size_t)si[2]};
        uint32_t mid;
        st = def_static(b, 1, cdims, wd, &wid);
        if (st == xnn_status_success)
            st = def_static(b, 1, cdims, bd, &bid);
        if (st == xnn_status_success)
            st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &mid);
        if (st == xnn_status_success)
            st = xnn_define_multiply2(b->sg, -INFINITY, INFINITY, x, wid, mid, 0);
        if (st == xnn_status_success)
            st = xnn_define_add2(b->sg, -INFINITY, INFINITY, mid, bid, t, 0);
        break;
    }
    case FL__NN_OP_PRELU: {
        size_t cdims[1] = {(size_t)si[2]};
        st = def_static(b, 1, cdims, wd, &wid);
        if (st == xnn_status_success)
            st = xnn_define_prelu(b->sg, x, wid, t, 0);
        break;
    }
    case FL__NN_OP_ACT:
        if (!act_node)
            st = xnn_define_clamp(b->sg, lo, hi, x, y, 0);
        t = x; /* the activation node below reads the input directly */
        break;
    case FL__NN_OP_MAXPOOL:
        st = xnn_define_max_pooling_2d(b->sg, (uint32_t)op->pad.top, (uint32_t)op->pad.right,
                                       (uint32_t)op->pad.bottom, (uint32_t)op->pad.left,
                                       (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->sh,
                                       (uint32_t)op->sw, 1, 1, -INFINITY, INFINITY, x, t, 0);
        break;
    case FL__NN_OP_AVGPOOL:
        st = xnn_define_average_pooling_2d(b->sg, (uint32_t)op->pad.top, (uint32_t)op->pad.right,
                                           (uint32_t)op->pad.bottom, (uint32_t)op->pad.left,
                                           (uint32_t)op->kh, (uint32_t)op->kw, (uint32_t)op->sh,
                                           (uint32_t)op->sw, -INFINITY, INFINITY, x, t, 0);
        break;
    case FL__NN_OP_GAVGPOOL:
        st = xnn_define_global_average_pooling_2d(b->sg, -INFINITY, INFINITY, x, t, 0);
        break;
    case FL__NN_OP_PAD: {
        size_t pre[4] = {0, (size_t)op->pad.top, (size_t)op->pad.left, (size_t)op->n};
        size_t post[4] = {0, (size_t)op->pad.bottom, (size_t)op->pad.right, (size_t)op->n2};
        st = xnn_define_static_constant_pad(b->sg, pre, post, 0.0f, x, t, 0);
        break;
    }
    case FL__NN_OP_CONCAT: {
        /* no concatenation node in the snapshot: zero-pad a with b's channels
         * after it, b with a's channels before it, and add. Exact: v + 0 = v. */
        const int *s2 = b->e->shape[op->b];
        size_t pre_a[4] = {0, 0, 0, 0}, post_a[4] = {0, 0, 0, (size_t)s2[2]};
        size_t pre_b[4] = {0, 0, 0, (size_t)si[2]}, post_b[4] = {0, 0, 0, 0};
        uint32_t pa, pb;
        st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &pa);
        if (st == xnn_status_success)
            st = def_act4(b, so, XNN_INVALID_VALUE_ID, 0, &pb);
        if (st == xnn_status_success)
            st = xnn_define_static_constant_pad(b->sg, pre_a, post_a, 0.0f, x, pa, 0);
        if (st == xnn_status_success)
            st = xnn_define_static_constant_pad(b->sg, pre_b, post_b, 0.0f, x2, pb, 0);
        if (st == xnn_status_success)
            st = xnn_define_add2(b->sg, -INFINITY, INFINITY, pa, pb, t, 0);
        break;
    }
    case FL__NN_OP_SOFTMAX:
        st = xnn_define_softmax(b->sg, x, t, 0);
        break;
    case FL__NN_OP_RESIZE:
        st = xnn_define_static_resize_bilinear_2d(b->sg, (size_t)op->h, (size_t)op->w, x, t,
                                                  op->n ? 0 : XNN_FLAG_TENSORFLOW_LEGACY_MODE);
        break;
    default:
        st = xnn_status_unsupported_parameter;
        break;
    }
    if (st != xnn_status_success || !act_node)
        return st;
    if (op->act == FL_NN_ACT_LEAKY)
        return xnn_define_leaky_relu(b->sg, op->alpha, t, y, 0);
    if (op->act == FL_NN_ACT_SIGMOID)
        return xnn_define_sigmoid(b->sg, t, y, 0);
    return define_tanh(b, so, t, y);
}

void fl__nn_xnn_free(struct fl_nn_exec *e)
{
    struct fl__nn_xnn *x = e->xnn;
    if (!x)
        return;
    for (int i = 0; i < x->n_steps; i++) {
        if (x->steps[i].rt)
            xnn_delete_runtime(x->steps[i].rt);
    }
    fl_free(x->steps);
    if (x->pool)
        pthreadpool_destroy(x->pool);
    fl_free(x);
    e->xnn = NULL;
}

enum fl_status fl__nn_xnn_plan(struct fl_nn_exec *e, struct fl_err *err)
{
    const struct fl__nn_ir *ir = &e->m->ir;
    const int n = ir->n_ops;
    enum fl_status rc = FL_ERR_NOMEM;
    struct fl__nn_xnn *x = NULL;
    int *seg = NULL; /* per value: segment index, -1 input/fallback, -2 dead */
    struct seg_build b = {0};
    int n_seg = 0;

    pthread_once(&xnn_once, xnn_init_once);
    if (xnn_init_status != xnn_status_success)
        return fl_err_set(err, FL_ERR_INTERNAL, "nn: xnn_initialize failed (%d)",
                          (int)xnn_init_status);

    x = fl_calloc(1, sizeof(*x));
    seg = fl_malloc((size_t)n * sizeof(*seg));
    b.xid = fl_malloc((size_t)n * sizeof(*b.xid));
    b.ext = fl_malloc((size_t)n * 2 * sizeof(*b.ext));
    if (!x || !seg || !b.xid || !b.ext)
        goto nomem;
    e->xnn = x;
    x->steps = fl_calloc((size_t)n, sizeof(*x->steps));
    if (!x->steps)
        goto nomem;

    /* 0: liveness. Ops no output depends on are skipped: XNNPACK gives an
     * internal value nobody reads no memory and then asserts. */
    for (int v = 0; v < n; v++)
        seg[v] = -2;
    for (int o = 0; o < ir->n_outputs; o++)
        seg[ir->outputs[o]] = -1;
    for (int v = n - 1; v >= 0; v--) {
        if (seg[v] == -2)
            continue;
        if (ir->ops[v].a >= 0)
            seg[ir->ops[v].a] = -1;
        if (ir->ops[v].b >= 0)
            seg[ir->ops[v].b] = -1;
    }
    seg[ir->input] = -1; /* the input always gets its buffer */
    /* 1-2: segments */
    for (int v = 0; v < n; v++) {
        const struct fl__nn_op *op = &ir->ops[v];
        if (seg[v] == -2)
            continue; /* dead */
        if (!xnn_capable(op)) {
            seg[v] = -1;
            if (op->type != FL__NN_OP_INPUT) {
                x->steps[x->n_steps].op = v;
                x->n_steps++;
            }
            continue;
        }
        if (x->n_steps == 0 || x->steps[x->n_steps - 1].op >= 0) {
            /* start a new segment step */
            x->steps[x->n_steps].op = -1;
            x->n_steps++;
            n_seg++;
        }
        seg[v] = n_seg - 1;
    }
    /* 3: buffers */
    for (int v = 0; v < n; v++) {
        bool need = seg[v] == -1;
        for (int o = 0; o < ir->n_outputs && !need; o++)
            need = ir->outputs[o] == v;
        for (int u = v + 1; u < n && !need; u++) {
            const struct fl__nn_op *op = &ir->ops[u];
            if ((op->a == v || op->b == v) && seg[u] != -2 && seg[u] != seg[v])
                need = true;
        }
        if (need) {
            e->buf[v] = fl__nn_exec_buf_alloc(e, v);
            if (!e->buf[v])
                goto nomem;
        }
    }
    if (e->n_threads > 1) {
        x->pool = pthreadpool_create((size_t)e->n_threads);
        if (!x->pool)
            goto nomem;
    }
    /* 4: one runtime per segment */
    b.e = e;
    {
        int s = 0;
        for (int i = 0; i < x->n_steps; i++) {
            enum xnn_status st = xnn_status_success;
            if (x->steps[i].op >= 0)
                continue;
            for (int v = 0; v < n; v++)
                b.xid[v] = XNN_INVALID_VALUE_ID;
            b.n_ext = 0;
            /* external ids: at most 2 inputs + 1 output per op, bounded by 2n */
            st = xnn_create_subgraph((uint32_t)(2 * n), 0, &b.sg);
            for (int v = 0; v < n && st == xnn_status_success; v++) {
                if (seg[v] == s)
                    st = lower_op(&b, v);
            }
            if (st == xnn_status_success)
                st = xnn_create_runtime_v2(b.sg, x->pool, x->pool ? XNN_FLAG_YIELD_WORKERS : 0,
                                           &x->steps[i].rt);
            if (b.sg)
                xnn_delete_subgraph(b.sg);
            b.sg = NULL;
            if (st == xnn_status_success)
                st = xnn_setup_runtime(x->steps[i].rt, b.n_ext, b.ext);
            if (st == xnn_status_out_of_memory)
                goto nomem;
            if (st != xnn_status_success) {
                rc = fl_err_set(err, FL_ERR_INTERNAL,
                                "nn: XNNPACK refused segment %d of '%s' (status %d)", s, ir->name,
                                (int)st);
                goto out;
            }
            s++;
        }
    }
    rc = FL_OK;
    goto out;
nomem:
    rc = fl_err_set(err, FL_ERR_NOMEM, "nn: out of memory planning '%s' for XNNPACK", ir->name);
out:
    fl_free(seg);
    fl_free(b.xid);
    fl_free(b.ext);
    if (rc != FL_OK && !e->xnn)
        fl_free(x);
    return rc;
}

enum fl_status fl__nn_xnn_run(struct fl_nn_exec *e, struct fl_err *err)
{
    struct fl__nn_xnn *x = e->xnn;
    for (int i = 0; i < x->n_steps; i++) {
        int v = x->steps[i].op;
        if (v < 0) {
            enum xnn_status st = xnn_invoke_runtime(x->steps[i].rt);
            if (st != xnn_status_success)
                return fl_err_set(err, FL_ERR_INTERNAL, "nn: XNNPACK run failed (status %d)",
                                  (int)st);
        } else {
            fl__nn_ref_op_items(e, v);
        }
    }
    return FL_OK;
}
