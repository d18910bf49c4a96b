/*
 * graph.c: the graph builder, shape inference and validation.
 *
 * Every public builder call fills a struct fl__nn_op and goes through one
 * function, fl__nn_graph_add_op(), which checks the parameters, infers the
 * output shape and copies the weights. The .flm loader replays a file's ops
 * through the same function, so there is exactly one place that decides what
 * a valid op is.
 *
 * Errors are sticky (SQLite's sticky OOM idea): the first one is kept in the
 * graph and every later builder call returns -1 at once, so importers check
 * once, at fl_nn_model_new().
 *
 * Shapes: values carry {h, w, c} with h/w 0 meaning "unknown until
 * fl_nn_exec_new()" when the input was declared dynamic. Channel counts are
 * always known. fl__nn_op_shape() is used both here (unknowns allowed) and by
 * fl__nn_infer_shapes() at plan time (everything concrete). An FC reading a
 * value of unknown spatial size takes in = c (it expects a 1x1 input);
 * exec_new rejects any other size.
 *
 * Threading: a graph belongs to one thread while it is built.
 */
#include "nn/nn_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ============================== IR storage ============================== */

void fl__nn_ir_fini(struct fl__nn_ir *ir)
{
    fl_free(ir->name);
    fl_free(ir->ops);
    fl_free(ir->shape);
    for (int i = 0; i < ir->n_blobs; i++)
        fl_free_aligned(ir->blobs[i].data);
    fl_free(ir->blobs);
    fl_free(ir->outputs);
    for (int i = 0; i < ir->n_meta; i++) {
        fl_free(ir->meta[i].key);
        fl_free(ir->meta[i].value);
    }
    fl_free(ir->meta);
    memset(ir, 0, sizeof(*ir));
    ir->input = -1;
}

/* Make room for one more element in a growable array of elem-sized items.
 * Returns false on out-of-memory (the array is left as it was). */
static bool grow(void **arr, int *cap, int n, size_t elem)
{
    void *p;
    size_t bytes;
    int ncap;
    if (n < *cap)
        return true;
    if (*cap > (1 << 24))
        return false;
    ncap = *cap ? *cap * 2 : 16;
    if (!fl_size_mul((size_t)ncap, elem, &bytes))
        return false;
    p = fl_realloc(*arr, bytes);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

struct fl_nn_graph *fl_nn_graph_new(const char *name)
{
    struct fl_nn_graph *g = fl_calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->ir.input = -1;
    g->ir.name = fl_strdup(name ? name : "");
    if (!g->ir.name) {
        fl_free(g);
        return NULL;
    }
    return g;
}

void fl_nn_graph_free(struct fl_nn_graph *g)
{
    if (!g)
        return;
    fl__nn_ir_fini(&g->ir);
    fl_free(g);
}

int fl_nn_graph_fail(struct fl_nn_graph *g, enum fl_status code, const char *fmt, ...)
{
    va_list ap;
    if (!g || g->err.code != FL_OK)
        return -1;
    g->err.code = code == FL_OK ? FL_ERR_INTERNAL : code;
    g->err.sys_errno = 0;
    va_start(ap, fmt);
    vsnprintf(g->err.msg, sizeof(g->err.msg), fmt, ap);
    va_end(ap);
    return -1;
}

/* Copy n floats into a new blob (or fill with value fill when src is NULL).
 * Returns the blob id or -1 (sticky NOMEM set). */
static int add_blob(struct fl_nn_graph *g, const float *src, size_t n, float fill)
{
    struct fl__nn_ir *ir = &g->ir;
    float *d;
    size_t bytes;
    if (!grow((void **)&ir->blobs, &ir->cap_blobs, ir->n_blobs, sizeof(*ir->blobs)))
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (blob table)");
    /* FL__NN_ALIGN bytes of zeroed slack: XNNPACK's vector kernels may read
     * a little past the end of static operands (XNN_EXTRA_BYTES) */
    if (!fl_size_mul(n, sizeof(float), &bytes) || !fl_size_add(bytes, FL__NN_ALIGN, &bytes))
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: blob too large");
    d = fl_malloc_aligned(bytes, FL__NN_ALIGN);
    if (!d)
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (%zu weights)", n);
    memset((char *)d + n * sizeof(float), 0, FL__NN_ALIGN);
    if (src) {
        memcpy(d, src, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = fill;
    }
    ir->blobs[ir->n_blobs].data = d;
    ir->blobs[ir->n_blobs].n = n;
    return ir->n_blobs++;
}

/* ============================ Shape inference ============================ */

static const char *const op_names[FL__NN_OP_COUNT_] = {
    [FL__NN_OP_INPUT] = "input",     [FL__NN_OP_CONV] = "conv2d",
    [FL__NN_OP_DWCONV] = "dwconv2d", [FL__NN_OP_FC] = "fc",
    [FL__NN_OP_ADD] = "add",         [FL__NN_OP_MUL] = "mul",
    [FL__NN_OP_AFFINE] = "affine",   [FL__NN_OP_PRELU] = "prelu",
    [FL__NN_OP_ACT] = "activation",  [FL__NN_OP_MAXPOOL] = "maxpool",
    [FL__NN_OP_AVGPOOL] = "avgpool", [FL__NN_OP_GAVGPOOL] = "global_avgpool",
    [FL__NN_OP_PAD] = "pad",         [FL__NN_OP_CONCAT] = "concat",
    [FL__NN_OP_SOFTMAX] = "softmax", [FL__NN_OP_RESIZE] = "resize_bilinear",
};

/* Human name of an op type for messages ("?" if unknown). */
static const char *op_name(int type)
{
    if (type < 0 || type >= FL__NN_OP_COUNT_)
        return "?";
    return op_names[type];
}

/* Output size of a windowed op along one axis; 0 if the input is unknown,
 * -1 if the window does not fit. */
static int window_out(int in, int k, int s, int p0, int p1)
{
    long span;
    if (in == 0)
        return 0;
    span = (long)in + p0 + p1 - k;
    if (span < 0)
        return -1;
    return (int)(span / s + 1);
}

size_t fl__nn_blob_len(const struct fl__nn_op *op, int cin, int which)
{
    size_t kk = (size_t)op->kh * (size_t)op->kw;
    switch (op->type) {
    case FL__NN_OP_CONV:
        return which ? (size_t)op->n : (size_t)op->n * kk * (size_t)cin;
    case FL__NN_OP_DWCONV:
        return which ? (size_t)cin * (size_t)op->n : kk * (size_t)cin * (size_t)op->n;
    case FL__NN_OP_FC:
        return which ? (size_t)op->n : (size_t)op->n * (size_t)op->n2;
    case FL__NN_OP_AFFINE:
        return (size_t)cin;
    case FL__NN_OP_PRELU:
        return which ? 0 : (size_t)cin;
    default:
        return 0;
    }
}

enum fl_status fl__nn_op_shape(const struct fl__nn_op *op, const int in0[3], const int in1[3],
                               bool allow_unknown, int out[3], struct fl_err *err)
{
    const char *nm = op_name(op->type);
    int oh = 0, ow = 0, oc = 0;
    size_t elems;

    switch (op->type) {
    case FL__NN_OP_CONV:
    case FL__NN_OP_DWCONV:
    case FL__NN_OP_MAXPOOL:
    case FL__NN_OP_AVGPOOL:
        oh = window_out(in0[0], op->kh, op->sh, op->pad.top, op->pad.bottom);
        ow = window_out(in0[1], op->kw, op->sw, op->pad.left, op->pad.right);
        if (oh < 0 || ow < 0)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "nn: %s: %dx%d kernel does not fit the %dx%d input with its padding",
                              nm, op->kh, op->kw, in0[0], in0[1]);
        oc = op->type == FL__NN_OP_CONV     ? op->n
             : op->type == FL__NN_OP_DWCONV ? in0[2] * op->n
                                            : in0[2];
        break;
    case FL__NN_OP_FC:
        if (in0[0] && in0[1]) {
            size_t in = (size_t)in0[0] * (size_t)in0[1] * (size_t)in0[2];
            if (in != (size_t)op->n2)
                return fl_err_set(err, FL_ERR_INVALID_ARG,
                                  "nn: fc: input %dx%dx%d flattens to %zu values, weights take %d",
                                  in0[0], in0[1], in0[2], in, op->n2);
        } else if (in0[2] != op->n2) {
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "nn: fc: input has %d channels, weights take %d", in0[2], op->n2);
        }
        oh = 1;
        ow = 1;
        oc = op->n;
        break;
    case FL__NN_OP_ADD:
    case FL__NN_OP_MUL:
    case FL__NN_OP_CONCAT:
        if (in0[2] != in1[2] && op->type != FL__NN_OP_CONCAT)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "nn: %s: channels differ (%d vs %d)", nm,
                              in0[2], in1[2]);
        for (int d = 0; d < 2; d++) {
            if (in0[d] && in1[d] && in0[d] != in1[d])
                return fl_err_set(err, FL_ERR_INVALID_ARG,
                                  "nn: %s: spatial sizes differ (%dx%d vs %dx%d)", nm, in0[0],
                                  in0[1], in1[0], in1[1]);
        }
        oh = in0[0] ? in0[0] : in1[0];
        ow = in0[1] ? in0[1] : in1[1];
        oc = op->type == FL__NN_OP_CONCAT ? in0[2] + in1[2] : in0[2];
        break;
    case FL__NN_OP_AFFINE:
    case FL__NN_OP_PRELU:
    case FL__NN_OP_ACT:
    case FL__NN_OP_SOFTMAX:
        oh = in0[0];
        ow = in0[1];
        oc = in0[2];
        break;
    case FL__NN_OP_GAVGPOOL:
        oh = 1;
        ow = 1;
        oc = in0[2];
        break;
    case FL__NN_OP_PAD:
        oh = in0[0] ? in0[0] + op->pad.top + op->pad.bottom : 0;
        ow = in0[1] ? in0[1] + op->pad.left + op->pad.right : 0;
        oc = in0[2] + op->n + op->n2;
        break;
    case FL__NN_OP_RESIZE:
        oh = op->h;
        ow = op->w;
        oc = in0[2];
        break;
    default:
        return fl_err_set(err, FL_ERR_INTERNAL, "nn: op type %d has no shape rule", op->type);
    }
    if ((!allow_unknown && (oh < 1 || ow < 1)) || oc < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "nn: %s: empty output %dx%dx%d", nm, oh, ow, oc);
    if (!allow_unknown && (in0[0] < 1 || in0[1] < 1 || (in1 && (in1[0] < 1 || in1[1] < 1))))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "nn: %s: empty input", nm);
    if (oh > FL__NN_MAX_DIM || ow > FL__NN_MAX_DIM || oc > FL__NN_MAX_DIM)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "nn: %s: output %dx%dx%d too large", nm, oh, ow,
                          oc);
    elems = (size_t)(oh ? oh : 1) * (size_t)(ow ? ow : 1) * (size_t)oc;
    if (elems > FL__NN_MAX_ELEMS)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "nn: %s: output %dx%dx%d too large", nm, oh, ow,
                          oc);
    out[0] = oh;
    out[1] = ow;
    out[2] = oc;
    return FL_OK;
}

enum fl_status fl__nn_infer_shapes(const struct fl__nn_ir *ir, int in_h, int in_w, int (*shapes)[3],
                                   struct fl_err *err)
{
    for (int v = 0; v < ir->n_ops; v++) {
        const struct fl__nn_op *op = &ir->ops[v];
        enum fl_status rc;
        if (op->type == FL__NN_OP_INPUT) {
            int h = in_h ? in_h : op->h, w = in_w ? in_w : op->w;
            if ((op->h && h != op->h) || (op->w && w != op->w))
                return fl_err_set(err, FL_ERR_INVALID_ARG,
                                  "nn: input size %dx%d differs from the model's fixed %dx%d", h, w,
                                  op->h, op->w);
            if (h < 1 || w < 1 || h > FL__NN_MAX_DIM || w > FL__NN_MAX_DIM)
                return fl_err_set(err, FL_ERR_INVALID_ARG,
                                  "nn: input size %dx%d invalid (dynamic inputs need a size)", h,
                                  w);
            if ((size_t)h * (size_t)w * (size_t)op->c > FL__NN_MAX_ELEMS)
                return fl_err_set(err, FL_ERR_INVALID_ARG, "nn: input %dx%dx%d too large", h, w,
                                  op->c);
            shapes[v][0] = h;
            shapes[v][1] = w;
            shapes[v][2] = op->c;
            continue;
        }
        rc = fl__nn_op_shape(op, shapes[op->a], op->b >= 0 ? shapes[op->b] : NULL, false, shapes[v],
                             err);
        if (rc != FL_OK)
            return rc;
    }
    return FL_OK;
}

/* ================================ Builder ================================ */

/* A known activation (LEAKY needs a finite alpha). */
static bool act_valid(int act, float alpha)
{
    if (act < FL_NN_ACT_NONE || act > FL_NN_ACT_TANH)
        return false;
    return act != FL_NN_ACT_LEAKY || isfinite(alpha);
}

/* Every side in [0, FL__NN_MAX_DIM]. */
static bool pad_valid(struct fl_nn_pad4 p)
{
    return p.top >= 0 && p.left >= 0 && p.bottom >= 0 && p.right >= 0 && p.top <= FL__NN_MAX_DIM &&
           p.left <= FL__NN_MAX_DIM && p.bottom <= FL__NN_MAX_DIM && p.right <= FL__NN_MAX_DIM;
}

/* Check the op's own parameters (not its inputs). Returns NULL if fine or a
 * static description of what is wrong. */
static const char *check_params(const struct fl__nn_op *op)
{
    bool windowed = false;
    switch (op->type) {
    case FL__NN_OP_CONV:
    case FL__NN_OP_DWCONV:
        if (op->n < 1 || op->n > FL__NN_MAX_DIM)
            return op->type == FL__NN_OP_CONV ? "bad output channel count"
                                              : "bad channel multiplier";
        windowed = true;
        break;
    case FL__NN_OP_MAXPOOL:
    case FL__NN_OP_AVGPOOL:
        windowed = true;
        /* every window must see at least one real pixel */
        if (op->pad.top >= op->kh || op->pad.bottom >= op->kh || op->pad.left >= op->kw ||
            op->pad.right >= op->kw)
            return "pooling padding must be smaller than the window";
        break;
    case FL__NN_OP_FC:
        if (op->n < 1 || op->n > FL__NN_MAX_DIM)
            return "bad output count";
        if (op->n2 < 1 || (size_t)op->n2 > FL__NN_MAX_ELEMS)
            return "bad input count";
        break;
    case FL__NN_OP_PAD:
        if (!pad_valid(op->pad) || op->n < 0 || op->n2 < 0 || op->n > FL__NN_MAX_DIM ||
            op->n2 > FL__NN_MAX_DIM)
            return "bad padding";
        break;
    case FL__NN_OP_RESIZE:
        if (op->h < 1 || op->w < 1 || op->h > FL__NN_MAX_DIM || op->w > FL__NN_MAX_DIM)
            return "bad output size";
        if (op->n != 0 && op->n != 1)
            return "bad half_pixel flag";
        break;
    default:
        break;
    }
    if (windowed) {
        if (op->kh < 1 || op->kw < 1 || op->kh > FL__NN_MAX_KERNEL || op->kw > FL__NN_MAX_KERNEL)
            return "bad kernel size";
        if (op->sh < 1 || op->sw < 1 || op->sh > FL__NN_MAX_KERNEL || op->sw > FL__NN_MAX_KERNEL)
            return "bad stride";
        if (!pad_valid(op->pad))
            return "bad padding";
    }
    if (!act_valid(op->act, op->alpha))
        return "bad activation";
    return NULL;
}

/* Ops with two inputs. */
static bool is_binary(int type)
{
    return type == FL__NN_OP_ADD || type == FL__NN_OP_MUL || type == FL__NN_OP_CONCAT;
}

int fl__nn_graph_add_op(struct fl_nn_graph *g, const struct fl__nn_op *op_in, const float *w,
                        const float *b)
{
    struct fl__nn_ir *ir;
    struct fl__nn_op op = *op_in;
    int shp[3] = {0, 0, 0};
    const char *why;
    int cin;
    size_t nw, nb;

    if (!g || g->err.code != FL_OK)
        return -1;
    ir = &g->ir;
    if (op.type <= FL__NN_OP_INPUT || op.type >= FL__NN_OP_COUNT_)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: unknown op type %d", op.type);
    if (op.a < 0 || op.a >= ir->n_ops)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: %s: input %d is not a value",
                                op_name(op.type), op.a);
    if (is_binary(op.type)) {
        if (op.b < 0 || op.b >= ir->n_ops)
            return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: %s: input %d is not a value",
                                    op_name(op.type), op.b);
    } else {
        op.b = -1;
    }
    cin = ir->shape[op.a][2];
    if (op.type == FL__NN_OP_FC && op.n2 == 0) {
        /* public builder: in from the input shape (c alone when spatial is unknown) */
        const int *s = ir->shape[op.a];
        size_t in = (size_t)(s[0] ? s[0] : 1) * (size_t)(s[1] ? s[1] : 1) * (size_t)s[2];
        if (in > FL__NN_MAX_ELEMS)
            return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: fc: input too large");
        op.n2 = (int)in;
    }
    why = check_params(&op);
    if (why)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: %s: %s", op_name(op.type), why);
    if (op.act != FL_NN_ACT_LEAKY)
        op.alpha = 0.0f;

    {
        struct fl_err e;
        fl_err_clear(&e);
        if (fl__nn_op_shape(&op, ir->shape[op.a], op.b >= 0 ? ir->shape[op.b] : NULL, true, shp,
                            &e) != FL_OK)
            return fl_nn_graph_fail(g, e.code, "%s", e.msg);
    }
    /* the weight count must stay sane even where the output is small */
    nw = fl__nn_blob_len(&op, cin, 0);
    nb = fl__nn_blob_len(&op, cin, 1);
    if (nw > FL__NN_MAX_ELEMS) /* dims <= 2^16 and kernels <= 2^6: no size_t overflow above */
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: %s: too many weights",
                                op_name(op.type));
    if (op.type == FL__NN_OP_PRELU && !w)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: prelu: slope missing");
    if ((op.type == FL__NN_OP_CONV || op.type == FL__NN_OP_DWCONV || op.type == FL__NN_OP_FC) && !w)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: %s: weights missing", op_name(op.type));

    if (!grow((void **)&ir->ops, &ir->cap_ops, ir->n_ops, sizeof(*ir->ops)))
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (op list)");
    {
        int cap = ir->cap_ops;
        void *p = fl_realloc(ir->shape, (size_t)cap * sizeof(*ir->shape));
        if (!p)
            return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (shapes)");
        ir->shape = p;
    }
    op.wblob = -1;
    op.bblob = -1;
    if (nw) {
        op.wblob = add_blob(g, w, nw, 1.0f);
        if (op.wblob < 0)
            return -1;
    }
    if (nb) {
        op.bblob = add_blob(g, b, nb, 0.0f);
        if (op.bblob < 0)
            return -1;
    }
    ir->ops[ir->n_ops] = op;
    memcpy(ir->shape[ir->n_ops], shp, sizeof(shp));
    return ir->n_ops++;
}

int fl_nn_input(struct fl_nn_graph *g, int h, int w, int c)
{
    struct fl__nn_ir *ir;
    struct fl__nn_op op = {0};
    if (!g || g->err.code != FL_OK)
        return -1;
    ir = &g->ir;
    if (ir->input >= 0)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: a graph has exactly one input");
    if (h < 0 || w < 0 || c < 1 || h > FL__NN_MAX_DIM || w > FL__NN_MAX_DIM || c > FL__NN_MAX_DIM ||
        (size_t)h * (size_t)w * (size_t)c > FL__NN_MAX_ELEMS)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: input: bad size %dx%dx%d", h, w, c);
    if (!grow((void **)&ir->ops, &ir->cap_ops, ir->n_ops, sizeof(*ir->ops)))
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (op list)");
    {
        void *p = fl_realloc(ir->shape, (size_t)ir->cap_ops * sizeof(*ir->shape));
        if (!p)
            return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (shapes)");
        ir->shape = p;
    }
    op.type = FL__NN_OP_INPUT;
    op.a = -1;
    op.b = -1;
    op.h = h;
    op.w = w;
    op.c = c;
    op.wblob = -1;
    op.bblob = -1;
    ir->ops[ir->n_ops] = op;
    ir->shape[ir->n_ops][0] = h;
    ir->shape[ir->n_ops][1] = w;
    ir->shape[ir->n_ops][2] = c;
    ir->input = ir->n_ops;
    return ir->n_ops++;
}

/* A windowed op template. */
static struct fl__nn_op window_op(int type, int x, int kh, int kw, int sh, int sw,
                                  struct fl_nn_pad4 pad)
{
    struct fl__nn_op op = {0};
    op.type = type;
    op.a = x;
    op.b = -1;
    op.kh = kh;
    op.kw = kw;
    op.sh = sh;
    op.sw = sw;
    op.pad = pad;
    return op;
}

int fl_nn_conv2d(struct fl_nn_graph *g, int x, const float *w, const float *bias, int cout, int kh,
                 int kw, int stride_h, int stride_w, struct fl_nn_pad4 pad, enum fl_nn_act act,
                 float act_alpha)
{
    struct fl__nn_op op = window_op(FL__NN_OP_CONV, x, kh, kw, stride_h, stride_w, pad);
    op.n = cout;
    op.act = (int)act;
    op.alpha = act_alpha;
    return fl__nn_graph_add_op(g, &op, w, bias);
}

int fl_nn_dwconv2d(struct fl_nn_graph *g, int x, const float *w, const float *bias, int mult,
                   int kh, int kw, int stride_h, int stride_w, struct fl_nn_pad4 pad,
                   enum fl_nn_act act, float act_alpha)
{
    struct fl__nn_op op = window_op(FL__NN_OP_DWCONV, x, kh, kw, stride_h, stride_w, pad);
    op.n = mult;
    op.act = (int)act;
    op.alpha = act_alpha;
    return fl__nn_graph_add_op(g, &op, w, bias);
}

int fl_nn_fc(struct fl_nn_graph *g, int x, const float *w, const float *bias, int cout,
             enum fl_nn_act act, float act_alpha)
{
    struct fl__nn_op op = {0};
    op.type = FL__NN_OP_FC;
    op.a = x;
    op.b = -1;
    op.n = cout;
    op.n2 = 0; /* from the input's shape */
    op.act = (int)act;
    op.alpha = act_alpha;
    return fl__nn_graph_add_op(g, &op, w, bias);
}

/* Add an op with no window parameters; see fl__nn_graph_add_op(). */
static int simple_op(struct fl_nn_graph *g, int type, int a, int b, int act, float alpha,
                     const float *w, const float *bias)
{
    struct fl__nn_op op = {0};
    op.type = type;
    op.a = a;
    op.b = b;
    op.act = act;
    op.alpha = alpha;
    return fl__nn_graph_add_op(g, &op, w, bias);
}

int fl_nn_add(struct fl_nn_graph *g, int a, int b, enum fl_nn_act act, float act_alpha)
{
    return simple_op(g, FL__NN_OP_ADD, a, b, (int)act, act_alpha, NULL, NULL);
}

int fl_nn_mul(struct fl_nn_graph *g, int a, int b)
{
    return simple_op(g, FL__NN_OP_MUL, a, b, 0, 0.0f, NULL, NULL);
}

int fl_nn_channel_affine(struct fl_nn_graph *g, int x, const float *scale, const float *shift)
{
    return simple_op(g, FL__NN_OP_AFFINE, x, -1, 0, 0.0f, scale, shift);
}

int fl_nn_prelu(struct fl_nn_graph *g, int x, const float *slope)
{
    return simple_op(g, FL__NN_OP_PRELU, x, -1, 0, 0.0f, slope, NULL);
}

int fl_nn_activation(struct fl_nn_graph *g, int x, enum fl_nn_act act, float act_alpha)
{
    return simple_op(g, FL__NN_OP_ACT, x, -1, (int)act, act_alpha, NULL, NULL);
}

int fl_nn_maxpool(struct fl_nn_graph *g, int x, int kh, int kw, int stride_h, int stride_w,
                  struct fl_nn_pad4 pad)
{
    struct fl__nn_op op = window_op(FL__NN_OP_MAXPOOL, x, kh, kw, stride_h, stride_w, pad);
    return fl__nn_graph_add_op(g, &op, NULL, NULL);
}

int fl_nn_avgpool(struct fl_nn_graph *g, int x, int kh, int kw, int stride_h, int stride_w,
                  struct fl_nn_pad4 pad)
{
    struct fl__nn_op op = window_op(FL__NN_OP_AVGPOOL, x, kh, kw, stride_h, stride_w, pad);
    return fl__nn_graph_add_op(g, &op, NULL, NULL);
}

int fl_nn_global_avgpool(struct fl_nn_graph *g, int x)
{
    return simple_op(g, FL__NN_OP_GAVGPOOL, x, -1, 0, 0.0f, NULL, NULL);
}

int fl_nn_pad(struct fl_nn_graph *g, int x, struct fl_nn_pad4 pad, int chan_before, int chan_after)
{
    struct fl__nn_op op = {0};
    op.type = FL__NN_OP_PAD;
    op.a = x;
    op.b = -1;
    op.pad = pad;
    op.n = chan_before;
    op.n2 = chan_after;
    return fl__nn_graph_add_op(g, &op, NULL, NULL);
}

int fl_nn_concat(struct fl_nn_graph *g, int a, int b)
{
    return simple_op(g, FL__NN_OP_CONCAT, a, b, 0, 0.0f, NULL, NULL);
}

int fl_nn_softmax(struct fl_nn_graph *g, int x)
{
    return simple_op(g, FL__NN_OP_SOFTMAX, x, -1, 0, 0.0f, NULL, NULL);
}

int fl_nn_resize_bilinear(struct fl_nn_graph *g, int x, int out_h, int out_w, bool half_pixel)
{
    struct fl__nn_op op = {0};
    op.type = FL__NN_OP_RESIZE;
    op.a = x;
    op.b = -1;
    op.h = out_h;
    op.w = out_w;
    op.n = half_pixel ? 1 : 0;
    return fl__nn_graph_add_op(g, &op, NULL, NULL);
}

int fl_nn_output(struct fl_nn_graph *g, int x)
{
    struct fl__nn_ir *ir;
    if (!g || g->err.code != FL_OK)
        return -1;
    ir = &g->ir;
    if (x < 0 || x >= ir->n_ops)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: output: %d is not a value", x);
    if (!grow((void **)&ir->outputs, &ir->cap_outputs, ir->n_outputs, sizeof(*ir->outputs)))
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (outputs)");
    ir->outputs[ir->n_outputs] = x;
    return ir->n_outputs++;
}

int fl_nn_meta_set(struct fl_nn_graph *g, const char *key, const char *value)
{
    struct fl__nn_ir *ir;
    char *k = NULL, *v = NULL;
    if (!g || g->err.code != FL_OK)
        return -1;
    ir = &g->ir;
    if (!key || !*key || !value)
        return fl_nn_graph_fail(g, FL_ERR_INVALID_ARG, "nn: meta: empty key or NULL value");
    v = fl_strdup(value);
    if (!v)
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (meta)");
    for (int i = 0; i < ir->n_meta; i++) {
        if (strcmp(ir->meta[i].key, key) == 0) {
            fl_free(ir->meta[i].value);
            ir->meta[i].value = v;
            return i;
        }
    }
    k = fl_strdup(key);
    if (!k || !grow((void **)&ir->meta, &ir->cap_meta, ir->n_meta, sizeof(*ir->meta))) {
        fl_free(k);
        fl_free(v);
        return fl_nn_graph_fail(g, FL_ERR_NOMEM, "nn: out of memory (meta)");
    }
    ir->meta[ir->n_meta].key = k;
    ir->meta[ir->n_meta].value = v;
    return ir->n_meta++;
}
