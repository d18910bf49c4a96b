/*
 * model.c: the immutable, shared model and its file format (.flm).
 *
 * fl_nn_model_new() moves a finished graph's IR into a reference-counted
 * model. Every op was validated when it was added (graph.c), so what is left
 * to check here is the graph as a whole: one input, at least one output, no
 * sticky builder error.
 *
 * ============================== The .flm format ==============================
 *
 * A self-describing little-endian container in the spirit of GGUF: a fixed
 * header, a variable "body" (name, metadata, ops, outputs, blob directory)
 * and a data section of 64-byte aligned float32 arrays.
 *
 *   Header, 64 bytes at offset 0:
 *     0   char[4] magic        "FLNM"
 *     4   u32     version      1 (FL__NN_FILE_VERSION)
 *     8   u32     header_size  64
 *     12  u32     n_meta       metadata pairs
 *     16  u32     n_ops        ops (the INPUT op included)
 *     20  u32     n_outputs
 *     24  u32     n_blobs
 *     28  u32     reserved     0
 *     32  u64     body_off     64
 *     40  u64     data_off     start of the data section, a multiple of 64,
 *                              >= the end of the body
 *     48  u64     data_size    bytes in the data section
 *     56  u64     file_size    total bytes; must equal the real size
 *   Body, at body_off, packed (no padding):
 *     string name                       (a string = u32 length + bytes, no
 *     n_meta x { string key; string value }   NUL inside, length capped)
 *     n_ops x op record, 20 x 4 bytes:  type a b h w c n n2 kh kw sh sw
 *                                       pad.top pad.left pad.bottom pad.right
 *                                       act alpha(f32) wblob bblob
 *                                       (i32 each except alpha; the meaning
 *                                       of each field per type is documented
 *                                       on struct fl__nn_op in nn_int.h)
 *     n_outputs x i32 value id
 *     n_blobs x { u64 offset (from data_off, multiple of 64); u64 n_floats }
 *   Data section: the blobs' float32 values.
 *
 * Loading checks every count, length and offset against the file size with
 * checked arithmetic before using it, and then rebuilds the model by
 * replaying the ops through the graph builder (fl__nn_graph_add_op), so a
 * file gets the same semantic validation as a graph built in code (types,
 * parameters, input ids, shapes, weight counts). Each blob must have exactly
 * the length its op implies. Anything that does not add up is FL_ERR_CORRUPT
 * (out-of-memory stays FL_ERR_NOMEM). Weights are copied out of the file
 * buffer into the model's own aligned blobs, so the buffer can be freed (or
 * be unaligned, as a fuzzer's is).
 *
 * Versioning: a reader refuses versions it does not know; op types and
 * activation numbers are append-only (nn_int.h, nn.h).
 *
 * Threading: a model is immutable after fl_nn_model_new(); any number of
 * threads may read it and make executors from it. The reference count is a
 * C11 atomic (h2o's shared chunks); the last unref frees.
 */
#include "nn/nn_int.h"

#include <string.h>

struct fl_nn_model *fl_nn_model_new(struct fl_nn_graph *g, struct fl_err *err)
{
    struct fl_nn_model *m = NULL;
    if (!g) {
        fl_err_set(err, FL_ERR_NOMEM, "nn: no graph (out of memory creating it)");
        return NULL;
    }
    if (g->err.code != FL_OK) {
        fl_err_set(err, g->err.code, "%s", g->err.msg);
        goto out;
    }
    if (g->ir.input < 0) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "nn: graph '%s' has no input", g->ir.name);
        goto out;
    }
    if (g->ir.n_outputs < 1) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "nn: graph '%s' has no output", g->ir.name);
        goto out;
    }
    m = fl_calloc(1, sizeof(*m));
    if (!m) {
        fl_err_set(err, FL_ERR_NOMEM, "nn: out of memory (model)");
        goto out;
    }
    m->ir = g->ir;
    memset(&g->ir, 0, sizeof(g->ir));
    g->ir.input = -1;
    atomic_init(&m->refs, 1);
out:
    fl_nn_graph_free(g);
    return m;
}

void fl_nn_model_ref(struct fl_nn_model *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void fl_nn_model_unref(struct fl_nn_model *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    fl__nn_ir_fini(&m->ir);
    fl_free(m);
}

const char *fl_nn_model_name(const struct fl_nn_model *m)
{
    return m->ir.name;
}

const char *fl_nn_model_meta(const struct fl_nn_model *m, const char *key)
{
    for (int i = 0; i < m->ir.n_meta; i++) {
        if (strcmp(m->ir.meta[i].key, key) == 0)
            return m->ir.meta[i].value;
    }
    return NULL;
}

int fl_nn_model_n_outputs(const struct fl_nn_model *m)
{
    return m->ir.n_outputs;
}

uint64_t fl_nn_model_macs(const struct fl_nn_model *m, int h, int w)
{
    const struct fl__nn_ir *ir = &m->ir;
    int(*shp)[3] = NULL;
    uint64_t macs = 0;
    shp = fl_malloc((size_t)ir->n_ops * sizeof(*shp));
    if (!shp)
        return 0;
    if (fl__nn_infer_shapes(ir, h, w, shp, NULL) != FL_OK)
        goto out;
    for (int v = 0; v < ir->n_ops; v++) {
        const struct fl__nn_op *op = &ir->ops[v];
        uint64_t out_px = (uint64_t)shp[v][0] * (uint64_t)shp[v][1];
        uint64_t kk = (uint64_t)op->kh * (uint64_t)op->kw;
        switch (op->type) {
        case FL__NN_OP_CONV:
            macs += out_px * (uint64_t)shp[v][2] * kk * (uint64_t)shp[op->a][2];
            break;
        case FL__NN_OP_DWCONV:
            macs += out_px * (uint64_t)shp[v][2] * kk;
            break;
        case FL__NN_OP_FC:
            macs += (uint64_t)op->n * (uint64_t)op->n2;
            break;
        default:
            break;
        }
    }
out:
    fl_free(shp);
    return macs;
}

/* ============================== File format ============================== */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, ".flm I/O assumes a little-endian host");

#define FL__NN_FILE_VERSION 1u
#define FILE_HEADER_SIZE    64u
#define OP_RECORD_FIELDS    20u
#define MAX_STRING          (1u << 20)        /* bytes per name/key/value */
#define MAX_COUNT           (1u << 20)        /* ops, metadata pairs, outputs, blobs */
#define MAX_FILE            ((size_t)1 << 32) /* 4 GiB */

static const char file_magic[4] = {'F', 'L', 'N', 'M'};

/* ---- writing ---- */

struct wcur {
    uint8_t *p; /* buffer (NULL while only measuring) */
    size_t off; /* bytes written (or measured) */
};

/* Append n bytes (only count them while measuring). The w_* helpers below
 * write little-endian integers (the host is little-endian) and strings. */
static void w_bytes(struct wcur *c, const void *src, size_t n)
{
    if (c->p && n)
        memcpy(c->p + c->off, src, n);
    c->off += n;
}

static void w_u32(struct wcur *c, uint32_t v)
{
    w_bytes(c, &v, 4);
}

static void w_u64(struct wcur *c, uint64_t v)
{
    w_bytes(c, &v, 8);
}

static void w_str(struct wcur *c, const char *s)
{
    size_t n = strlen(s);
    w_u32(c, (uint32_t)n);
    w_bytes(c, s, n);
}

/* x rounded up to a multiple of 64. */
static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

/* Write the header and body (c->p NULL: just measure). */
static void write_head(struct wcur *c, const struct fl__nn_ir *ir, size_t data_off,
                       size_t data_size, size_t file_size)
{
    w_bytes(c, file_magic, 4);
    w_u32(c, FL__NN_FILE_VERSION);
    w_u32(c, FILE_HEADER_SIZE);
    w_u32(c, (uint32_t)ir->n_meta);
    w_u32(c, (uint32_t)ir->n_ops);
    w_u32(c, (uint32_t)ir->n_outputs);
    w_u32(c, (uint32_t)ir->n_blobs);
    w_u32(c, 0);
    w_u64(c, FILE_HEADER_SIZE);
    w_u64(c, data_off);
    w_u64(c, data_size);
    w_u64(c, file_size);
    w_str(c, ir->name);
    for (int i = 0; i < ir->n_meta; i++) {
        w_str(c, ir->meta[i].key);
        w_str(c, ir->meta[i].value);
    }
    for (int i = 0; i < ir->n_ops; i++) {
        const struct fl__nn_op *op = &ir->ops[i];
        int32_t f[OP_RECORD_FIELDS] = {
            op->type,       op->a,         op->b,   op->h,  op->w,     op->c,       op->n,
            op->n2,         op->kh,        op->kw,  op->sh, op->sw,    op->pad.top, op->pad.left,
            op->pad.bottom, op->pad.right, op->act, 0,      op->wblob, op->bblob};
        memcpy(&f[17], &op->alpha, 4);
        w_bytes(c, f, sizeof(f));
    }
    for (int i = 0; i < ir->n_outputs; i++)
        w_u32(c, (uint32_t)ir->outputs[i]);
    {
        size_t off = 0;
        for (int i = 0; i < ir->n_blobs; i++) {
            w_u64(c, off);
            w_u64(c, ir->blobs[i].n);
            off = align64(off + ir->blobs[i].n * sizeof(float));
        }
    }
}

enum fl_status fl_nn_model_save(const struct fl_nn_model *m, const char *path, struct fl_err *err)
{
    const struct fl__nn_ir *ir = &m->ir;
    struct wcur c = {NULL, 0};
    size_t data_off, data_size = 0, total;
    enum fl_status rc;

    for (int i = 0; i < ir->n_blobs; i++)
        data_size = align64(data_size + ir->blobs[i].n * sizeof(float));
    write_head(&c, ir, 0, 0, 0);
    data_off = align64(c.off);
    total = data_off + data_size;
    if (total > MAX_FILE)
        return fl_err_set(err, FL_ERR_LIMIT, "nn: model '%s' too large to save", ir->name);
    c.p = fl_calloc(1, total ? total : 1);
    if (!c.p)
        return fl_err_set(err, FL_ERR_NOMEM, "nn: out of memory saving '%s'", ir->name);
    c.off = 0;
    write_head(&c, ir, data_off, data_size, total);
    {
        size_t off = 0;
        for (int i = 0; i < ir->n_blobs; i++) {
            memcpy(c.p + data_off + off, ir->blobs[i].data, ir->blobs[i].n * sizeof(float));
            off = align64(off + ir->blobs[i].n * sizeof(float));
        }
    }
    rc = fl_file_write_atomic(path, c.p, total, err);
    fl_free(c.p);
    return rc;
}

/* ---- reading ---- */

struct rcur {
    const uint8_t *p;
    size_t n;   /* readable bytes (the body ends at data_off) */
    size_t off; /* next byte */
    bool bad;   /* ran past the end */
};

/* Copy n bytes out, or mark the cursor bad if they run past c->n. The r_*
 * helpers below return 0 once the cursor is bad; callers check c->bad. */
static bool r_bytes(struct rcur *c, void *dst, size_t n)
{
    if (c->bad || n > c->n - c->off) {
        c->bad = true;
        return false;
    }
    memcpy(dst, c->p + c->off, n);
    c->off += n;
    return true;
}

static uint32_t r_u32(struct rcur *c)
{
    uint32_t v = 0;
    r_bytes(c, &v, 4);
    return v;
}

static uint64_t r_u64(struct rcur *c)
{
    uint64_t v = 0;
    r_bytes(c, &v, 8);
    return v;
}

/* A string into a fresh NUL-terminated copy; NULL with *nomem or corrupt. */
static char *r_str(struct rcur *c, bool *nomem)
{
    uint32_t len = r_u32(c);
    char *s;
    if (c->bad || len > MAX_STRING || len > c->n - c->off) {
        c->bad = true;
        return NULL;
    }
    if (memchr(c->p + c->off, 0, len)) {
        c->bad = true;
        return NULL;
    }
    s = fl_strndup((const char *)c->p + c->off, len);
    if (!s) {
        *nomem = true;
        return NULL;
    }
    c->off += len;
    return s;
}

struct blob_ent {
    uint64_t off, n;
};

struct fl_nn_model *fl_nn_model_load_mem(const void *p, size_t n, struct fl_err *err)
{
    const uint8_t *b = p;
    struct rcur c = {b, 0, 0, false};
    struct fl_nn_graph *g = NULL;
    struct fl_nn_model *m = NULL;
    struct blob_ent *blobs = NULL;
    struct fl__nn_op *ops = NULL;
    char *name = NULL;
    bool nomem = false;
    uint32_t n_meta, n_ops, n_outputs, n_blobs;
    uint64_t body_off, data_off, data_size, file_size;
    size_t ops_off, blobs_off;
    const char *why = NULL;

    if (!p || n < FILE_HEADER_SIZE) {
        fl_err_set(err, FL_ERR_CORRUPT, "nn: model file too short (%zu bytes)", n);
        return NULL;
    }
    c.n = FILE_HEADER_SIZE;
    {
        char magic[4];
        r_bytes(&c, magic, 4);
        if (memcmp(magic, file_magic, 4) != 0) {
            why = "bad magic";
            goto corrupt;
        }
    }
    if (r_u32(&c) != FL__NN_FILE_VERSION) {
        why = "unsupported version";
        goto corrupt;
    }
    if (r_u32(&c) != FILE_HEADER_SIZE) {
        why = "bad header size";
        goto corrupt;
    }
    n_meta = r_u32(&c);
    n_ops = r_u32(&c);
    n_outputs = r_u32(&c);
    n_blobs = r_u32(&c);
    (void)r_u32(&c);
    body_off = r_u64(&c);
    data_off = r_u64(&c);
    data_size = r_u64(&c);
    file_size = r_u64(&c);
    if (file_size != n || body_off != FILE_HEADER_SIZE || data_off % 64 != 0 ||
        data_off < body_off || data_off > n || data_size != n - data_off) {
        why = "header offsets do not match the file size";
        goto corrupt;
    }
    if (n_meta > MAX_COUNT || n_ops > MAX_COUNT || n_outputs > MAX_COUNT || n_blobs > MAX_COUNT ||
        n_ops < 1 || n_outputs < 1) {
        why = "bad counts";
        goto corrupt;
    }
    /* the body: everything up to data_off */
    c.n = (size_t)data_off;
    c.off = (size_t)body_off;
    name = r_str(&c, &nomem);
    if (!name)
        goto fail;
    g = fl_nn_graph_new(name);
    if (!g) {
        nomem = true;
        goto fail;
    }
    for (uint32_t i = 0; i < n_meta; i++) {
        char *k = r_str(&c, &nomem), *v = k ? r_str(&c, &nomem) : NULL;
        if (k && v && !*k)
            c.bad = true; /* the builder would say INVALID_ARG; in a file it is corruption */
        if (k && v && !c.bad)
            fl_nn_meta_set(g, k, v);
        fl_free(k);
        fl_free(v);
        if (!k || !v || c.bad)
            goto fail;
    }
    /* ops: read records now, replay after the blob directory is known */
    ops_off = c.off;
    if ((size_t)n_ops * OP_RECORD_FIELDS * 4 > c.n - c.off) {
        why = "op list runs past the data section";
        goto corrupt;
    }
    c.off += (size_t)n_ops * OP_RECORD_FIELDS * 4;
    if ((size_t)n_outputs * 4 > c.n - c.off) {
        why = "output list runs past the data section";
        goto corrupt;
    }
    c.off += (size_t)n_outputs * 4;
    blobs_off = c.off;
    if ((size_t)n_blobs * 16 > c.n - c.off) {
        why = "blob directory runs past the data section";
        goto corrupt;
    }
    blobs = fl_malloc((size_t)(n_blobs ? n_blobs : 1) * sizeof(*blobs));
    ops = fl_malloc((size_t)n_ops * sizeof(*ops));
    if (!blobs || !ops) {
        nomem = true;
        goto fail;
    }
    c.off = blobs_off;
    for (uint32_t i = 0; i < n_blobs; i++) {
        blobs[i].off = r_u64(&c);
        blobs[i].n = r_u64(&c);
        if (blobs[i].off % 64 != 0 || blobs[i].off > data_size ||
            blobs[i].n > (data_size - blobs[i].off) / sizeof(float) ||
            blobs[i].n > FL__NN_MAX_ELEMS) {
            why = "blob outside the data section";
            goto corrupt;
        }
    }
    c.off = ops_off;
    for (uint32_t i = 0; i < n_ops; i++) {
        int32_t f[OP_RECORD_FIELDS];
        struct fl__nn_op *op = &ops[i];
        r_bytes(&c, f, sizeof(f));
        op->type = f[0];
        op->a = f[1];
        op->b = f[2];
        op->h = f[3];
        op->w = f[4];
        op->c = f[5];
        op->n = f[6];
        op->n2 = f[7];
        op->kh = f[8];
        op->kw = f[9];
        op->sh = f[10];
        op->sw = f[11];
        op->pad.top = f[12];
        op->pad.left = f[13];
        op->pad.bottom = f[14];
        op->pad.right = f[15];
        op->act = f[16];
        memcpy(&op->alpha, &f[17], 4);
        op->wblob = f[18];
        op->bblob = f[19];
    }
    /* replay */
    for (uint32_t i = 0; i < n_ops; i++) {
        const struct fl__nn_op *op = &ops[i];
        const float *data[2] = {NULL, NULL};
        int id;
        if (op->type == FL__NN_OP_INPUT) {
            if (op->a != -1 || op->b != -1 || op->wblob != -1 || op->bblob != -1) {
                why = "malformed input op";
                goto corrupt;
            }
            id = fl_nn_input(g, op->h, op->w, op->c);
        } else {
            const int32_t ids[2] = {op->wblob, op->bblob};
            if (op->type == FL__NN_OP_FC && op->n2 < 1) {
                why = "fc without an input count";
                goto corrupt;
            }
            if (op->a < 0 || (uint32_t)op->a >= i) {
                why = "op reads a value not made before it";
                goto corrupt;
            }
            for (int k = 0; k < 2; k++) {
                size_t want = fl__nn_blob_len(op, g->ir.shape ? g->ir.shape[op->a][2] : 0, k);
                if (ids[k] == -1 && want == 0)
                    continue;
                if (ids[k] < 0 || (uint32_t)ids[k] >= n_blobs || want != blobs[ids[k]].n) {
                    why = "op's blob missing or of the wrong length";
                    goto corrupt;
                }
                /* possibly unaligned: the builder memcpy()s it */
                data[k] = (const float *)(const void *)(b + data_off + blobs[ids[k]].off);
            }
            id = fl__nn_graph_add_op(g, op, data[0], data[1]);
        }
        if (id < 0) {
            if (g->err.code == FL_ERR_NOMEM) {
                nomem = true;
                goto fail;
            }
            fl_err_set(err, FL_ERR_CORRUPT, "nn: model file: op %u: %s", i, g->err.msg);
            goto out;
        }
        if ((uint32_t)id != i) {
            why = "op ids out of order";
            goto corrupt;
        }
    }
    c.off = blobs_off - (size_t)n_outputs * 4;
    for (uint32_t i = 0; i < n_outputs; i++) {
        uint32_t v = r_u32(&c);
        if (v >= n_ops) {
            why = "output is not a value";
            goto corrupt;
        }
        if (fl_nn_output(g, (int)v) < 0) {
            nomem = true;
            goto fail;
        }
    }
    m = fl_nn_model_new(g, err);
    g = NULL;
    if (!m && err && err->code != FL_ERR_NOMEM)
        err->code = FL_ERR_CORRUPT;
    goto out;
fail:
    if (nomem) {
        fl_err_set(err, FL_ERR_NOMEM, "nn: out of memory loading a model");
        goto out;
    }
    why = "truncated or malformed body";
corrupt:
    fl_err_set(err, FL_ERR_CORRUPT, "nn: model file: %s", why);
out:
    fl_free(name);
    fl_free(blobs);
    fl_free(ops);
    fl_nn_graph_free(g);
    return m;
}

struct fl_nn_model *fl_nn_model_load(const char *path, struct fl_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct fl_nn_model *m;
    if (fl_file_read(path, MAX_FILE, &data, &len, err) != FL_OK)
        return NULL;
    m = fl_nn_model_load_mem(data, len, err);
    fl_free(data);
    return m;
}
