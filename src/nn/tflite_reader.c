/*
 * tflite_reader.c: a hand-written, bounds-checked reader for TFLite
 * flatbuffers (tensorflow/lite/schema/schema.fbs).
 *
 * What: the bytes of a .tflite file become plain structs (tflite.h) for
 * subgraph 0: tensors with shape, type and constant data, operators with
 * their builtin code, tensor indices and option fields, graph inputs and
 * outputs. Only the tables the importer needs are read; unknown fields are
 * skipped, as flatbuffers intends.
 *
 * Why by hand: flatc's generated C++ (and flatcc's C) trust the buffer unless
 * a separate verifier runs, and pull in a code generator. The subset we need
 * is small: Model, SubGraph, Tensor, Buffer, Operator, OperatorCode and a
 * dozen option tables.
 *
 * Flatbuffer rules checked here (every one, before the read it guards):
 *   - the root uoffset, every table's soffset to its vtable, the vtable's
 *     size fields, and every field's offset against the table's inline size;
 *   - every uoffset to a vector, string or sub-table lands inside the
 *     buffer, and a vector's length times its element size fits in what is
 *     left (size math in 64 bits on a size_t-bounded buffer);
 *   - strings are NUL-terminated inside the buffer;
 *   - tensor and buffer indices are in range; shapes are non-negative with
 *     rank <= FL_TFL_MAX_RANK.
 * Anything else is FL_ERR_CORRUPT with a message naming the table. Reads go
 * through memcpy, so misaligned input is fine (little-endian hosts only, as
 * the rest of FaceLink). Nothing recurses, so hostile nesting cannot exhaust
 * the stack; allocations are bounded by the vector lengths, which are bounded
 * by the buffer size.
 *
 * Builtin code: max(deprecated_builtin_code, builtin_code), which is how the
 * schema keeps old files (only the int8 field) and new ones (codes > 127)
 * both readable.
 *
 * Threading: reentrant; no shared state.
 */
#include "nn/tflite.h"

#include <string.h>

struct fb {
    const uint8_t *p;
    size_t n;
    struct fl_err *err;
};

/* A table: its position and its vtable's field slots. */
struct fbt {
    size_t pos;      /* table start */
    size_t vt;       /* vtable start */
    size_t vt_size;  /* bytes */
    size_t tbl_size; /* inline bytes of the table */
};

#define CORRUPT(b, ...) fl_err_set((b)->err, FL_ERR_CORRUPT, "tflite: " __VA_ARGS__)

static uint32_t ld_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint16_t ld_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* Open the table at pos. Returns FL_OK or FL_ERR_CORRUPT naming `what`. */
static enum fl_status fb_table(const struct fb *b, size_t pos, struct fbt *t, const char *what)
{
    int32_t soff;
    int64_t vt;
    if (pos > b->n || b->n - pos < 4)
        return CORRUPT(b, "%s table at %zu outside the file", what, pos);
    memcpy(&soff, b->p + pos, 4);
    vt = (int64_t)pos - (int64_t)soff;
    if (vt < 0 || (uint64_t)vt > b->n || b->n - (size_t)vt < 4)
        return CORRUPT(b, "%s vtable outside the file", what);
    t->pos = pos;
    t->vt = (size_t)vt;
    t->vt_size = ld_u16(b->p + t->vt);
    t->tbl_size = ld_u16(b->p + t->vt + 2);
    if (t->vt_size < 4 || (t->vt_size & 1) || t->vt_size > b->n - t->vt)
        return CORRUPT(b, "%s vtable size %zu invalid", what, t->vt_size);
    if (t->tbl_size < 4 || t->tbl_size > b->n - pos)
        return CORRUPT(b, "%s table size %zu invalid", what, t->tbl_size);
    return FL_OK;
}

/* Position of field idx of size `size`, or 0 when absent (the vtable slot is
 * beyond the vtable or holds 0). A present field must lie inside the table;
 * 0 is never a valid field position since fields follow the soffset. */
static enum fl_status fb_field(const struct fb *b, const struct fbt *t, int idx, size_t size,
                               size_t *out)
{
    size_t slot = 4 + 2 * (size_t)idx;
    size_t off;
    *out = 0;
    if (slot + 2 > t->vt_size)
        return FL_OK;
    off = ld_u16(b->p + t->vt + slot);
    if (off == 0)
        return FL_OK;
    if (off < 4 || off > t->tbl_size || t->tbl_size - off < size)
        return CORRUPT(b, "field %d outside its table", idx);
    *out = t->pos + off;
    return FL_OK;
}

static enum fl_status fb_i32(const struct fb *b, const struct fbt *t, int idx, int32_t def,
                             int32_t *out)
{
    size_t at = 0;
    enum fl_status rc = fb_field(b, t, idx, 4, &at);
    *out = def;
    if (rc == FL_OK && at)
        memcpy(out, b->p + at, 4);
    return rc;
}

static enum fl_status fb_u32(const struct fb *b, const struct fbt *t, int idx, uint32_t def,
                             uint32_t *out)
{
    size_t at = 0;
    enum fl_status rc = fb_field(b, t, idx, 4, &at);
    *out = def;
    if (rc == FL_OK && at)
        *out = ld_u32(b->p + at);
    return rc;
}

static enum fl_status fb_u64(const struct fb *b, const struct fbt *t, int idx, uint64_t *out)
{
    size_t at = 0;
    enum fl_status rc = fb_field(b, t, idx, 8, &at);
    *out = 0;
    if (rc == FL_OK && at)
        memcpy(out, b->p + at, 8);
    return rc;
}

static enum fl_status fb_f32(const struct fb *b, const struct fbt *t, int idx, float def,
                             float *out)
{
    size_t at = 0;
    enum fl_status rc = fb_field(b, t, idx, 4, &at);
    *out = def;
    if (rc == FL_OK && at)
        memcpy(out, b->p + at, 4);
    return rc;
}

/* One byte, signed (int8 fields such as enums) or unsigned (ubyte, bool). */
static enum fl_status fb_i8(const struct fb *b, const struct fbt *t, int idx, int def, bool sign,
                            int *out)
{
    size_t at = 0;
    enum fl_status rc = fb_field(b, t, idx, 1, &at);
    *out = def;
    if (rc == FL_OK && at)
        *out = sign ? (int)(int8_t)b->p[at] : (int)b->p[at];
    return rc;
}

/* Follow the uoffset stored at position at. */
static enum fl_status fb_deref(const struct fb *b, size_t at, size_t *out, const char *what)
{
    uint32_t rel;
    if (at > b->n || b->n - at < 4)
        return CORRUPT(b, "%s offset outside the file", what);
    rel = ld_u32(b->p + at);
    if (rel == 0 || rel > b->n - at)
        return CORRUPT(b, "%s offset outside the file", what);
    *out = at + rel;
    return FL_OK;
}

/* Vector field idx: start of its elements and its length, or *len = 0 and
 * *start = 0 when absent. Checks len * elem_size fits in the file. */
static enum fl_status fb_vec(const struct fb *b, const struct fbt *t, int idx, size_t elem_size,
                             size_t *start, size_t *len, const char *what)
{
    size_t at, vec;
    uint64_t n_el;
    enum fl_status rc = fb_field(b, t, idx, 4, &at);
    *start = 0;
    *len = 0;
    if (rc != FL_OK || !at)
        return rc;
    rc = fb_deref(b, at, &vec, what);
    if (rc != FL_OK)
        return rc;
    if (b->n - vec < 4)
        return CORRUPT(b, "%s vector header outside the file", what);
    n_el = ld_u32(b->p + vec);
    if (n_el * (uint64_t)elem_size > (uint64_t)(b->n - vec - 4))
        return CORRUPT(b, "%s vector of %llu outside the file", what, (unsigned long long)n_el);
    *start = vec + 4;
    *len = (size_t)n_el;
    return FL_OK;
}

/* String field idx: NUL-terminated inside the file, or "" when absent. */
static enum fl_status fb_str(const struct fb *b, const struct fbt *t, int idx, const char **out,
                             const char *what)
{
    size_t start, len;
    enum fl_status rc = fb_vec(b, t, idx, 1, &start, &len, what);
    *out = "";
    if (rc != FL_OK || !start)
        return rc;
    if (len >= b->n - start || b->p[start + len] != 0)
        return CORRUPT(b, "%s string not terminated", what);
    *out = (const char *)(b->p + start);
    return FL_OK;
}

/* Element i of a vector of tables starting at start. */
static enum fl_status fb_vec_table(const struct fb *b, size_t start, size_t i, struct fbt *t,
                                   const char *what)
{
    size_t at = 0;
    enum fl_status rc = fb_deref(b, start + 4 * i, &at, what);
    if (rc != FL_OK)
        return rc;
    return fb_table(b, at, t, what);
}

/* Sub-table field idx; *present false when absent. */
static enum fl_status fb_subtable(const struct fb *b, const struct fbt *t, int idx, struct fbt *sub,
                                  bool *present, const char *what)
{
    size_t at, pos;
    enum fl_status rc = fb_field(b, t, idx, 4, &at);
    *present = false;
    if (rc != FL_OK || !at)
        return rc;
    rc = fb_deref(b, at, &pos, what);
    if (rc != FL_OK)
        return rc;
    *present = true;
    return fb_table(b, pos, sub, what);
}

/* ============================== Option tables ============================== */

/* BuiltinOptions union type numbers (schema.fbs) of the tables read below. */
enum {
    OPT_CONV2D = 1,
    OPT_DWCONV2D = 2,
    OPT_POOL2D = 5,
    OPT_FC = 8,
    OPT_SOFTMAX = 9,
    OPT_CONCAT = 10,
    OPT_ADD = 11,
    OPT_RESHAPE = 17,
    OPT_MUL = 21,
    OPT_REDUCER = 27,
    OPT_SUB = 28,
    OPT_DIV = 29,
};

/* The option table an op of builtin `code` must carry (0 = none or not
 * read here). A mismatch means the union type lies about the table. */
static int expected_opt(int code)
{
    switch (code) {
    case FL_TFL_CONV_2D:
        return OPT_CONV2D;
    case FL_TFL_DEPTHWISE_CONV_2D:
        return OPT_DWCONV2D;
    case FL_TFL_AVERAGE_POOL_2D:
    case FL_TFL_MAX_POOL_2D:
        return OPT_POOL2D;
    case FL_TFL_FULLY_CONNECTED:
        return OPT_FC;
    case FL_TFL_SOFTMAX:
        return OPT_SOFTMAX;
    case FL_TFL_CONCATENATION:
        return OPT_CONCAT;
    case FL_TFL_ADD:
        return OPT_ADD;
    case FL_TFL_RESHAPE:
        return OPT_RESHAPE;
    case FL_TFL_MUL:
        return OPT_MUL;
    case FL_TFL_MEAN:
    case FL_TFL_SUM:
    case FL_TFL_REDUCE_MAX:
        return OPT_REDUCER;
    case FL_TFL_SUB:
        return OPT_SUB;
    case FL_TFL_DIV:
        return OPT_DIV;
    default:
        return 0;
    }
}

static void opts_defaults(struct fl_tfl_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->dilation_w = 1;
    o->dilation_h = 1;
    o->depth_multiplier = 0;
    o->beta = 1.0f;
    o->n_new_shape = -1;
}

/* Read the option table of union type `type` at t into o. Union types we do
 * not read are left at their defaults; the importer rejects their ops. */
static enum fl_status read_opts(const struct fb *b, const struct fbt *t, int type,
                                struct fl_tfl_opts *o)
{
    enum fl_status rc = FL_OK;
    int32_t v;
    o->type = type;
#define I32(idx, field, def)                                                                       \
    do {                                                                                           \
        if (rc == FL_OK) {                                                                         \
            rc = fb_i32(b, t, idx, def, &v);                                                       \
            o->field = v;                                                                          \
        }                                                                                          \
    } while (0)
#define I8(idx, field, sign)                                                                       \
    do {                                                                                           \
        if (rc == FL_OK)                                                                           \
            rc = fb_i8(b, t, idx, 0, sign, &o->field);                                             \
    } while (0)
    switch (type) {
    case OPT_CONV2D:
        I8(0, padding, true);
        I32(1, stride_w, 0);
        I32(2, stride_h, 0);
        I8(3, act, true);
        I32(4, dilation_w, 1);
        I32(5, dilation_h, 1);
        break;
    case OPT_DWCONV2D:
        I8(0, padding, true);
        I32(1, stride_w, 0);
        I32(2, stride_h, 0);
        I32(3, depth_multiplier, 0);
        I8(4, act, true);
        I32(5, dilation_w, 1);
        I32(6, dilation_h, 1);
        break;
    case OPT_POOL2D:
        I8(0, padding, true);
        I32(1, stride_w, 0);
        I32(2, stride_h, 0);
        I32(3, filter_w, 0);
        I32(4, filter_h, 0);
        I8(5, act, true);
        break;
    case OPT_FC:
        I8(0, act, true);
        I8(1, weights_format, true);
        I8(2, keep_num_dims, false);
        break;
    case OPT_SOFTMAX:
        if (rc == FL_OK)
            rc = fb_f32(b, t, 0, 1.0f, &o->beta);
        break;
    case OPT_CONCAT:
        I32(0, axis, 0);
        I8(1, act, true);
        break;
    case OPT_ADD:
    case OPT_MUL:
    case OPT_SUB:
    case OPT_DIV:
        I8(0, act, true);
        break;
    case OPT_REDUCER:
        I8(0, keep_dims, false);
        break;
    case OPT_RESHAPE: {
        size_t start, len;
        if (rc == FL_OK)
            rc = fb_vec(b, t, 0, 4, &start, &len, "ReshapeOptions.new_shape");
        if (rc == FL_OK && start) {
            if (len > FL_TFL_MAX_RANK)
                return fl_err_set(b->err, FL_ERR_INVALID_ARG,
                                  "tflite: RESHAPE to rank %zu unsupported", len);
            o->n_new_shape = (int)len;
            for (size_t i = 0; i < len; i++)
                memcpy(&o->new_shape[i], b->p + start + 4 * i, 4);
        }
        break;
    }
    default:
        break;
    }
#undef I32
#undef I8
    return rc;
}

/* ================================ The model ================================ */

void fl__nn_tfl_model_fini(struct fl_tfl_model *m)
{
    if (!m)
        return;
    fl_free(m->tensors);
    fl_free(m->ops);
    fl_free(m->idx_pool);
    memset(m, 0, sizeof(*m));
}

/* Copy a vector of int32 tensor indices into pool[*used..], checking each is
 * in [-1, n_tensors) (or [0, n_tensors) when !allow_absent). */
static enum fl_status read_indices(const struct fb *b, size_t start, size_t len, int n_tensors,
                                   bool allow_absent, int32_t *dst, const char *what)
{
    for (size_t i = 0; i < len; i++) {
        int32_t v;
        memcpy(&v, b->p + start + 4 * i, 4);
        if (v >= n_tensors || v < (allow_absent ? -1 : 0))
            return CORRUPT(b, "%s: tensor index %d out of range", what, (int)v);
        dst[i] = v;
    }
    return FL_OK;
}

static enum fl_status read_tensor(const struct fb *b, const struct fbt *t, size_t bufs,
                                  size_t n_bufs, struct fl_tfl_tensor *out)
{
    size_t start, len;
    uint32_t buf_idx;
    int type;
    enum fl_status rc;

    rc = fb_vec(b, t, 0, 4, &start, &len, "Tensor.shape");
    if (rc != FL_OK)
        return rc;
    if (len > FL_TFL_MAX_RANK)
        return fl_err_set(b->err, FL_ERR_INVALID_ARG, "tflite: tensor of rank %zu unsupported",
                          len);
    out->rank = (int)len;
    for (size_t i = 0; i < len; i++) {
        memcpy(&out->shape[i], b->p + start + 4 * i, 4);
        if (out->shape[i] < 0)
            return CORRUPT(b, "tensor dim %d negative", (int)out->shape[i]);
    }
    rc = fb_i8(b, t, 1, 0, true, &type);
    if (rc == FL_OK)
        rc = fb_u32(b, t, 2, 0, &buf_idx);
    if (rc == FL_OK)
        rc = fb_str(b, t, 3, &out->name, "Tensor.name");
    if (rc != FL_OK)
        return rc;
    out->type = type;
    if (buf_idx >= n_bufs)
        return CORRUPT(b, "tensor buffer %u of %zu", buf_idx, n_bufs);
    {
        struct fbt bt;
        size_t dstart, dlen;
        uint64_t off, size;
        rc = fb_vec_table(b, bufs, buf_idx, &bt, "Buffer");
        if (rc == FL_OK)
            rc = fb_vec(b, &bt, 0, 1, &dstart, &dlen, "Buffer.data");
        if (rc == FL_OK)
            rc = fb_u64(b, &bt, 1, &off);
        if (rc == FL_OK)
            rc = fb_u64(b, &bt, 2, &size);
        if (rc != FL_OK)
            return rc;
        if (dlen) {
            out->data = b->p + dstart;
            out->n_data = dlen;
        } else if (off > 1) {
            /* Data outside the flatbuffer (files > 2 GiB): offset from the
             * start of the file. */
            if (off > b->n || size > b->n - off)
                return CORRUPT(b, "buffer offset/size outside the file");
            out->data = b->p + off;
            out->n_data = (size_t)size;
        }
    }
    return FL_OK;
}

static enum fl_status read_op(const struct fb *b, const struct fbt *t, const int *codes,
                              size_t n_codes, int n_tensors, int32_t *pool, size_t pool_cap,
                              size_t *pool_used, struct fl_tfl_op *op)
{
    uint32_t opcode_index;
    size_t in_s, in_n, out_s, out_n;
    int opt_type;
    enum fl_status rc;

    rc = fb_u32(b, t, 0, 0, &opcode_index);
    if (rc == FL_OK)
        rc = fb_vec(b, t, 1, 4, &in_s, &in_n, "Operator.inputs");
    if (rc == FL_OK)
        rc = fb_vec(b, t, 2, 4, &out_s, &out_n, "Operator.outputs");
    if (rc == FL_OK)
        rc = fb_i8(b, t, 3, 0, false, &opt_type);
    if (rc != FL_OK)
        return rc;
    if (opcode_index >= n_codes)
        return CORRUPT(b, "operator code index %u of %zu", opcode_index, n_codes);
    if (in_n > pool_cap - *pool_used || out_n > pool_cap - *pool_used - in_n)
        return CORRUPT(b, "operator tensor lists overflow");
    op->code = codes[opcode_index];
    op->n_in = (int)in_n;
    op->n_out = (int)out_n;
    op->in = pool + *pool_used;
    op->out = op->in + in_n;
    rc = read_indices(b, in_s, in_n, n_tensors, true, op->in, "Operator.inputs");
    if (rc == FL_OK)
        rc = read_indices(b, out_s, out_n, n_tensors, false, op->out, "Operator.outputs");
    if (rc != FL_OK)
        return rc;
    *pool_used += in_n + out_n;
    opts_defaults(&op->opts);
    if (opt_type != 0 && expected_opt(op->code) && opt_type != expected_opt(op->code))
        return CORRUPT(b, "%s carries options of type %d", fl__nn_tfl_op_name(op->code), opt_type);
    if (opt_type != 0) {
        struct fbt ot;
        bool present;
        rc = fb_subtable(b, t, 4, &ot, &present, "Operator.builtin_options");
        if (rc != FL_OK)
            return rc;
        if (present)
            rc = read_opts(b, &ot, opt_type, &op->opts);
        else
            op->opts.type = opt_type;
    }
    return rc;
}

enum fl_status fl__nn_tfl_parse(const void *p, size_t n, struct fl_tfl_model *out,
                                struct fl_err *err)
{
    struct fb b = {p, n, err};
    struct fbt model, sg, t;
    size_t root, codes_s, codes_n, sgs_s, sgs_n, bufs_s, bufs_n, ten_s, ten_n, ops_s, ops_n;
    size_t gin_s, gin_n, gout_s, gout_n, pool_cap = 0, pool_used = 0;
    int *codes = NULL;
    enum fl_status rc;

    memset(out, 0, sizeof(*out));
    if (!p || n < 8 || n > (size_t)INT32_MAX * 2u)
        return fl_err_set(err, FL_ERR_CORRUPT, "tflite: %zu bytes is not a model", n);
    rc = fb_deref(&b, 0, &root, "root");
    if (rc == FL_OK)
        rc = fb_table(&b, root, &model, "Model");
    if (rc == FL_OK)
        rc = fb_u32(&b, &model, 0, 0, &out->version);
    if (rc == FL_OK)
        rc = fb_vec(&b, &model, 1, 4, &codes_s, &codes_n, "Model.operator_codes");
    if (rc == FL_OK)
        rc = fb_vec(&b, &model, 2, 4, &sgs_s, &sgs_n, "Model.subgraphs");
    if (rc == FL_OK)
        rc = fb_str(&b, &model, 3, &out->description, "Model.description");
    if (rc == FL_OK)
        rc = fb_vec(&b, &model, 4, 4, &bufs_s, &bufs_n, "Model.buffers");
    if (rc != FL_OK)
        goto out;
    if (out->version != 3) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, "tflite: schema version %u unsupported",
                        out->version);
        goto out;
    }
    if (sgs_n < 1) {
        rc = CORRUPT(&b, "no subgraph");
        goto out;
    }
    out->n_subgraphs = (int)sgs_n;

    /* Operator codes (n is bounded by the file size / 4). */
    codes = fl_calloc(codes_n ? codes_n : 1, sizeof(*codes));
    if (!codes) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "tflite: out of memory");
        goto out;
    }
    for (size_t i = 0; i < codes_n && rc == FL_OK; i++) {
        int dep = 0;
        int32_t code = 0;
        rc = fb_vec_table(&b, codes_s, i, &t, "OperatorCode");
        if (rc == FL_OK)
            rc = fb_i8(&b, &t, 0, 0, true, &dep);
        if (rc == FL_OK)
            rc = fb_i32(&b, &t, 3, 0, &code);
        if (rc == FL_OK && (code < 0 || dep < 0))
            rc = CORRUPT(&b, "negative builtin code");
        codes[i] = code > dep ? code : dep;
    }
    if (rc != FL_OK)
        goto out;

    rc = fb_vec_table(&b, sgs_s, 0, &sg, "SubGraph");
    if (rc == FL_OK)
        rc = fb_vec(&b, &sg, 0, 4, &ten_s, &ten_n, "SubGraph.tensors");
    if (rc == FL_OK)
        rc = fb_vec(&b, &sg, 1, 4, &gin_s, &gin_n, "SubGraph.inputs");
    if (rc == FL_OK)
        rc = fb_vec(&b, &sg, 2, 4, &gout_s, &gout_n, "SubGraph.outputs");
    if (rc == FL_OK)
        rc = fb_vec(&b, &sg, 3, 4, &ops_s, &ops_n, "SubGraph.operators");
    if (rc != FL_OK)
        goto out;
    if (ten_n > INT32_MAX / 2 || ops_n > INT32_MAX / 2) {
        rc = CORRUPT(&b, "too many tensors or operators");
        goto out;
    }

    out->n_tensors = (int)ten_n;
    out->tensors = fl_calloc(ten_n ? ten_n : 1, sizeof(*out->tensors));
    out->n_ops = (int)ops_n;
    out->ops = fl_calloc(ops_n ? ops_n : 1, sizeof(*out->ops));
    if (!out->tensors || !out->ops) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "tflite: out of memory");
        goto out;
    }
    for (size_t i = 0; i < ten_n && rc == FL_OK; i++) {
        rc = fb_vec_table(&b, ten_s, i, &t, "Tensor");
        if (rc == FL_OK)
            rc = read_tensor(&b, &t, bufs_s, bufs_n, &out->tensors[i]);
    }
    if (rc != FL_OK)
        goto out;

    /* First pass sizes the index pool: every operator's inputs and outputs
     * plus the graph's. Each count is bounded by the file size / 4. */
    pool_cap = gin_n + gout_n;
    for (size_t i = 0; i < ops_n && rc == FL_OK; i++) {
        size_t s, a, c;
        rc = fb_vec_table(&b, ops_s, i, &t, "Operator");
        if (rc == FL_OK)
            rc = fb_vec(&b, &t, 1, 4, &s, &a, "Operator.inputs");
        if (rc == FL_OK)
            rc = fb_vec(&b, &t, 2, 4, &s, &c, "Operator.outputs");
        if (rc == FL_OK && (!fl_size_add(pool_cap, a, &pool_cap) ||
                            !fl_size_add(pool_cap, c, &pool_cap)))
            rc = CORRUPT(&b, "operator lists too long");
    }
    if (rc != FL_OK)
        goto out;
    out->idx_pool = fl_calloc(pool_cap ? pool_cap : 1, sizeof(int32_t));
    if (!out->idx_pool) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "tflite: out of memory");
        goto out;
    }
    out->n_inputs = (int)gin_n;
    out->inputs = out->idx_pool;
    out->n_outputs = (int)gout_n;
    out->outputs = out->idx_pool + gin_n;
    pool_used = gin_n + gout_n;
    rc = read_indices(&b, gin_s, gin_n, (int)ten_n, false, out->inputs, "SubGraph.inputs");
    if (rc == FL_OK)
        rc = read_indices(&b, gout_s, gout_n, (int)ten_n, false, out->outputs,
                          "SubGraph.outputs");
    for (size_t i = 0; i < ops_n && rc == FL_OK; i++) {
        rc = fb_vec_table(&b, ops_s, i, &t, "Operator");
        if (rc == FL_OK)
            rc = read_op(&b, &t, codes, codes_n, (int)ten_n, out->idx_pool, pool_cap,
                         &pool_used, &out->ops[i]);
    }
out:
    fl_free(codes);
    if (rc != FL_OK)
        fl__nn_tfl_model_fini(out);
    return rc;
}

/* clang-format off */
static const char *const op_names[] = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION", "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC",
    "LSH_PROJECTION", "LSTM", "MAX_POOL_2D", "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE",
    "RESIZE_BILINEAR", "RNN", "SOFTMAX", "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS",
    "SKIP_GRAM", "CALL", "CUSTOM", "EMBEDDING_LOOKUP_SPARSE", "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND",
    "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX",
    "DELEGATE", "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM",
    "LESS", "NEG", "PADV2", "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN",
    "TRANSPOSE_CONV", "SPARSE_TO_DENSE", "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG",
    "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN", "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX",
    "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND", "LOGICAL_NOT", "UNPACK", "REDUCE_MIN",
    "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL", "FLOOR_MOD", "RANGE",
    "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD", "ABS",
};
/* clang-format on */

const char *fl__nn_tfl_op_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof(op_names) / sizeof(op_names[0]))
        return "?";
    return op_names[code];
}
