/*
 * faceapi_weights.c: reader for tfjs weight manifests (face-api's model
 * packages).
 *
 * Format (tfjs io "weights manifest"): a JSON array of groups; each group is
 *   {"paths": ["x.bin", ...], "weights": [{"name", "shape", "dtype",
 *    "quantization": {"dtype", "scale", "min"}?}, ...]}
 * The weights of a group are stored back to back, in listed order, in the
 * concatenation of that group's shards (tfjs cuts shards at a byte count,
 * not at tensor boundaries, so a tensor may straddle two files). Without
 * quantization a float32/int32 tensor takes 4 bytes per element (little
 * endian). With quantization it takes 1 (uint8) or 2 (uint16, float16) bytes
 * per element and is dequantised as tfjs' io_utils does:
 *   float32 <- uint8/uint16: float32(q * scale + min), in double
 *   int32   <- uint8/uint16: Math.round(q * scale + min) (round half up)
 *   float32 <- float16: exact widening
 * face-api 1.7.15 uses uint8 for almost everything, plain float32 for a few
 * tensors (biases in some nets, the SSD anchors) and quantised int32 for the
 * SSD's graph constants.
 *
 * Everything read from the files is validated before use: JSON shape,
 * names, ranks, dims (checked products), dtype names, finite scale/min,
 * byte counts against the shard bytes. Failures are FL_ERR_CORRUPT with the
 * offending tensor in the message; nothing from the files reaches an assert.
 * More shard bytes than the manifest describes is accepted (tfjs ignores
 * them too); bytes_used/bytes_total let a caller insist on equality.
 *
 * Alternatives rejected: keeping the raw bytes and dequantising on lookup
 * (builders would each need the quantisation logic, and a lookup could then
 * fail late); mmap (the files are a few MB and are converted anyway).
 *
 * Threading: loading is re-entrant; a loaded object is immutable.
 */
#include "nn/faceapi.h"

#include <math.h>
#include <string.h>

#define MANIFEST_MAX_BYTES ((size_t)16 << 20)
#define SHARD_MAX_BYTES    ((size_t)1 << 30)
#define MAX_SHARDS         4096
#define MAX_TENSORS        10000 /* duplicate check is quadratic; face-api nets have < 300 */
#define MAX_NAME_LEN       1024
#define MAX_PATH_LEN       4096

struct entry {
    struct fl_nn_faceapi_tensor pub; /* what callers see; pointers below */
    char *name;                      /* owned */
    void *data;                      /* owned: float[n] or int32_t[n] */
};

struct fl_nn_faceapi_weights {
    struct entry *e; /* owned, n_e entries in manifest order */
    size_t n_e;
    size_t bytes_used;  /* bytes the manifest describes */
    size_t bytes_total; /* shard bytes present */
    char sha256[65];
};

void fl_nn_faceapi_weights_free(struct fl_nn_faceapi_weights *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_e; i++) {
        fl_free(w->e[i].name);
        fl_free(w->e[i].data);
    }
    fl_free(w->e);
    fl_free(w);
}

const struct fl_nn_faceapi_tensor *fl_nn_faceapi_weights_get(const struct fl_nn_faceapi_weights *w,
                                                             const char *name)
{
    for (size_t i = 0; i < w->n_e; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return &w->e[i].pub;
    return NULL;
}

size_t fl_nn_faceapi_weights_count(const struct fl_nn_faceapi_weights *w)
{
    return w->n_e;
}

const struct fl_nn_faceapi_tensor *fl_nn_faceapi_weights_at(const struct fl_nn_faceapi_weights *w,
                                                            size_t i)
{
    FL_ASSERT(i < w->n_e);
    return &w->e[i].pub;
}

size_t fl_nn_faceapi_weights_bytes_used(const struct fl_nn_faceapi_weights *w)
{
    return w->bytes_used;
}

size_t fl_nn_faceapi_weights_bytes_total(const struct fl_nn_faceapi_weights *w)
{
    return w->bytes_total;
}

const char *fl_nn_faceapi_weights_sha256(const struct fl_nn_faceapi_weights *w)
{
    return w->sha256;
}

/* ============================== Decoding ============================== */

/* IEEE half to float, exact (subnormals, inf and NaN included). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    float f;

    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        f = (float)man * 0x1p-24f;
        return sign ? -f : f;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* Little-endian u32 at p (any alignment). */
static uint32_t rd_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum qkind { Q_NONE, Q_U8, Q_U16, Q_F16 };

/* Decode one tensor's n elements from src (exactly its byte count) into a
 * fresh buffer *out. Returns FL_ERR_CORRUPT for values that cannot be
 * represented (int32 out of range). */
static enum fl_status decode_tensor(const uint8_t *src, size_t n, enum fl_nn_faceapi_dtype dt,
                                    enum qkind q, double scale, double min, const char *name,
                                    void **out, struct fl_err *err)
{
    size_t bytes;
    float *f = NULL;
    int32_t *iv = NULL;

    if (!fl_size_mul(n, 4, &bytes))
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: size overflow", name);
    if (dt == FL_NN_FACEAPI_F32) {
        f = fl_malloc(bytes);
        if (!f)
            return fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory");
    } else {
        iv = fl_malloc(bytes);
        if (!iv)
            return fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        double v;
        uint32_t u;
        switch (q) {
        case Q_NONE:
            u = rd_u32le(src + 4 * i);
            if (f)
                memcpy(&f[i], &u, sizeof(u));
            else
                iv[i] = (int32_t)u;
            continue;
        case Q_F16:
            /* float32 only (checked by the caller) */
            f[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
            continue;
        case Q_U8:
            v = (double)src[i];
            break;
        case Q_U16:
        default:
            v = (double)(src[2 * i] | src[2 * i + 1] << 8);
            break;
        }
        /* Two statements: no fused multiply-add, the same double rounding
         * steps as JavaScript's v * scale + min. */
        v *= scale;
        v += min;
        if (f) {
            f[i] = (float)v;
        } else {
            double r = floor(v + 0.5); /* Math.round */
            if (!(r >= -2147483648.0 && r <= 2147483647.0)) {
                fl_free(iv);
                return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: int32 value out of range",
                                  name);
            }
            iv[i] = (int32_t)r;
        }
    }
    *out = f ? (void *)f : (void *)iv;
    return FL_OK;
}

/* ============================== Manifest ============================== */

/* Validate the manifest's top-level structure and count its shard paths. */
static enum fl_status count_paths(const json_t *root, size_t *out_n, struct fl_err *err)
{
    size_t n = 0, gi;
    const json_t *g;

    if (!json_is_array(root) || json_array_size(root) == 0)
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: manifest is not a non-empty array");
    json_array_foreach(root, gi, g)
    {
        const json_t *paths = json_object_get(g, "paths");
        const json_t *weights = json_object_get(g, "weights");
        if (!json_is_object(g) || !json_is_array(paths) || !json_is_array(weights))
            return fl_err_set(err, FL_ERR_CORRUPT,
                              "faceapi: manifest group %zu lacks paths/weights arrays", gi);
        for (size_t i = 0; i < json_array_size(paths); i++)
            if (!json_is_string(json_array_get(paths, i)))
                return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: group %zu: path not a string", gi);
        n += json_array_size(paths);
        if (n > MAX_SHARDS)
            return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: too many shards");
    }
    *out_n = n;
    return FL_OK;
}

/* Parse one weight spec: name, shape (checked), dtype, quantisation. */
static enum fl_status parse_spec(const json_t *ws, struct entry *e, enum qkind *out_q,
                                 double *out_scale, double *out_min, size_t *out_bytes,
                                 struct fl_err *err)
{
    const json_t *jn = json_object_get(ws, "name");
    const json_t *js = json_object_get(ws, "shape");
    const json_t *jd = json_object_get(ws, "dtype");
    const json_t *jq = json_object_get(ws, "quantization");
    const char *name, *dt;
    size_t n = 1, esize;
    enum qkind q = Q_NONE;

    if (!json_is_object(ws) || !json_is_string(jn))
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: weight spec without a name");
    name = json_string_value(jn);
    if (json_string_length(jn) == 0 || json_string_length(jn) > MAX_NAME_LEN ||
        strlen(name) != json_string_length(jn))
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: bad weight name");
    if (!json_is_array(js) || json_array_size(js) > FL_NN_FACEAPI_MAX_RANK)
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: bad shape", name);
    e->pub.rank = (int)json_array_size(js);
    for (int i = 0; i < e->pub.rank; i++) {
        const json_t *d = json_array_get(js, (size_t)i);
        json_int_t v;
        if (!json_is_integer(d))
            return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: shape not integers", name);
        v = json_integer_value(d);
        if (v < 0 || v > INT32_MAX)
            return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: dim out of range", name);
        e->pub.shape[i] = (int)v;
        if (!fl_size_mul(n, (size_t)v, &n))
            return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: shape overflows", name);
    }
    e->pub.n = n;
    if (!json_is_string(jd))
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: no dtype", name);
    dt = json_string_value(jd);
    if (strcmp(dt, "float32") == 0)
        e->pub.dtype = FL_NN_FACEAPI_F32;
    else if (strcmp(dt, "int32") == 0)
        e->pub.dtype = FL_NN_FACEAPI_I32;
    else
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: unsupported dtype %.32s", name, dt);
    esize = 4;
    if (jq) {
        const json_t *qd = json_object_get(jq, "dtype");
        const char *qs;
        if (!json_is_object(jq) || !json_is_string(qd))
            return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: bad quantization", name);
        qs = json_string_value(qd);
        if (strcmp(qs, "uint8") == 0) {
            q = Q_U8;
            esize = 1;
        } else if (strcmp(qs, "uint16") == 0) {
            q = Q_U16;
            esize = 2;
        } else if (strcmp(qs, "float16") == 0 && e->pub.dtype == FL_NN_FACEAPI_F32) {
            q = Q_F16;
            esize = 2;
        } else {
            return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: unsupported quantization %.32s",
                              name, qs);
        }
        if (q == Q_U8 || q == Q_U16) {
            if (!fl_json_number(json_object_get(jq, "scale"), out_scale) ||
                !fl_json_number(json_object_get(jq, "min"), out_min) || !isfinite(*out_scale) ||
                !isfinite(*out_min))
                return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: bad scale/min", name);
        }
    }
    if (!fl_size_mul(n, esize, out_bytes))
        return fl_err_set(err, FL_ERR_CORRUPT, "faceapi: %s: byte size overflows", name);
    *out_q = q;
    return FL_OK;
}

/* Build the weights object from a parsed manifest and its shards. */
static struct fl_nn_faceapi_weights *build(const json_t *root, const void *const *shards,
                                           const size_t *shard_lens, size_t n_shards,
                                           struct fl_err *err)
{
    struct fl_nn_faceapi_weights *w = NULL;
    uint8_t *all = NULL;
    size_t total = 0, n_specs = 0, si = 0, base = 0, gi, pos;
    const json_t *g;
    enum fl_status rc = FL_OK;

    for (size_t i = 0; i < n_shards; i++) {
        if (shard_lens[i] > SHARD_MAX_BYTES || !fl_size_add(total, shard_lens[i], &total)) {
            fl_err_set(err, FL_ERR_CORRUPT, "faceapi: shard too large");
            goto fail;
        }
    }
    json_array_foreach(root, gi, g) n_specs += json_array_size(json_object_get(g, "weights"));
    if (n_specs > MAX_TENSORS) {
        fl_err_set(err, FL_ERR_CORRUPT, "faceapi: too many tensors");
        goto fail;
    }
    w = fl_calloc(1, sizeof(*w));
    all = fl_malloc(total);
    if (!w || !all)
        goto nomem;
    w->e = fl_calloc(n_specs ? n_specs : 1, sizeof(*w->e));
    if (!w->e)
        goto nomem;
    /* One contiguous copy: tensors may straddle shards, and the sha256 is
     * over all the bytes. */
    pos = 0;
    for (size_t i = 0; i < n_shards; i++) {
        if (shard_lens[i])
            memcpy(all + pos, shards[i], shard_lens[i]);
        pos += shard_lens[i];
    }
    fl_sha256_hex(all, total, w->sha256);
    w->bytes_total = total;

    json_array_foreach(root, gi, g)
    {
        const json_t *paths = json_object_get(g, "paths");
        const json_t *specs = json_object_get(g, "weights");
        size_t gbytes = 0, cur = 0, wi;
        const json_t *ws;

        for (size_t i = 0; i < json_array_size(paths); i++, si++)
            gbytes += shard_lens[si]; /* no overflow: bounded by total */
        json_array_foreach(specs, wi, ws)
        {
            struct entry *e = &w->e[w->n_e];
            enum qkind q = Q_NONE;
            double scale = 1.0, min = 0.0;
            size_t nbytes = 0;

            rc = parse_spec(ws, e, &q, &scale, &min, &nbytes, err);
            if (rc != FL_OK)
                goto fail;
            if (nbytes > gbytes - cur) {
                fl_err_set(err, FL_ERR_CORRUPT,
                           "faceapi: %s: needs %zu bytes at offset %zu, group has %zu",
                           json_string_value(json_object_get(ws, "name")), nbytes, cur, gbytes);
                goto fail;
            }
            e->name = fl_strdup(json_string_value(json_object_get(ws, "name")));
            if (!e->name)
                goto nomem;
            w->n_e++; /* from here on e is freed with w */
            if (fl_nn_faceapi_weights_get(w, e->name) != &e->pub) {
                fl_err_set(err, FL_ERR_CORRUPT, "faceapi: duplicate tensor %s", e->name);
                goto fail;
            }
            rc = decode_tensor(all + base + cur, e->pub.n, e->pub.dtype, q, scale, min, e->name,
                               &e->data, err);
            if (rc != FL_OK)
                goto fail;
            e->pub.name = e->name;
            e->pub.f32 = e->pub.dtype == FL_NN_FACEAPI_F32 ? e->data : NULL;
            e->pub.i32 = e->pub.dtype == FL_NN_FACEAPI_I32 ? e->data : NULL;
            cur += nbytes;
        }
        w->bytes_used += cur;
        base += gbytes;
    }
    fl_free(all);
    return w;

nomem:
    fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory");
fail:
    fl_free(all);
    fl_nn_faceapi_weights_free(w);
    return NULL;
}

/* Parse the manifest text (size-capped); caller json_decref()s. NULL with
 * err set: CORRUPT for bad JSON, NOMEM when jansson says so. */
static json_t *parse_json(const char *p, size_t n, struct fl_err *err)
{
    json_error_t je;
    json_t *root;

    if (n > MANIFEST_MAX_BYTES) {
        fl_err_set(err, FL_ERR_CORRUPT, "faceapi: manifest larger than %zu bytes",
                   MANIFEST_MAX_BYTES);
        return NULL;
    }
    fl_json_setup();
    root = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!root && json_error_code(&je) == json_error_out_of_memory)
        fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory (manifest JSON)");
    else if (!root)
        fl_err_set(err, FL_ERR_CORRUPT, "faceapi: manifest JSON: %s at line %d", je.text, je.line);
    return root;
}

struct fl_nn_faceapi_weights *fl_nn_faceapi_weights_load_mem(const char *json, size_t json_len,
                                                             const void *const *shards,
                                                             const size_t *shard_lens,
                                                             size_t n_shards, struct fl_err *err)
{
    struct fl_nn_faceapi_weights *w = NULL;
    json_t *root;
    size_t n_paths;

    root = parse_json(json, json_len, err);
    if (!root)
        return NULL;
    if (count_paths(root, &n_paths, err) != FL_OK)
        goto out;
    if (n_paths != n_shards) {
        fl_err_set(err, FL_ERR_INVALID_ARG, "faceapi: manifest names %zu shards, %zu given",
                   n_paths, n_shards);
        goto out;
    }
    w = build(root, shards, shard_lens, n_shards, err);
out:
    json_decref(root);
    return w;
}

/* A shard path from the manifest must stay inside the manifest's folder. */
static bool path_ok(const char *p)
{
    if (!*p || p[0] == '/' || strlen(p) > MAX_PATH_LEN)
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return false;
        if (!e)
            break;
        s = e + 1;
    }
    return true;
}

struct fl_nn_faceapi_weights *fl_nn_faceapi_weights_load(const char *manifest_path,
                                                         struct fl_err *err)
{
    struct fl_nn_faceapi_weights *w = NULL;
    uint8_t *text = NULL;
    size_t text_len = 0, n_paths = 0, n_read = 0, dir_len, gi;
    json_t *root = NULL;
    uint8_t **bufs = NULL;
    size_t *lens = NULL;
    const char *slash;
    char *path = NULL;
    const json_t *g;

    if (fl_file_read(manifest_path, MANIFEST_MAX_BYTES, &text, &text_len, err) != FL_OK)
        return NULL;
    root = parse_json((const char *)text, text_len, err);
    if (!root)
        goto out;
    if (count_paths(root, &n_paths, err) != FL_OK)
        goto out;
    bufs = fl_calloc(n_paths ? n_paths : 1, sizeof(*bufs));
    lens = fl_calloc(n_paths ? n_paths : 1, sizeof(*lens));
    path = fl_malloc(strlen(manifest_path) + MAX_PATH_LEN + 2);
    if (!bufs || !lens || !path) {
        fl_err_set(err, FL_ERR_NOMEM, "faceapi: out of memory");
        goto out;
    }
    slash = strrchr(manifest_path, '/');
    dir_len = slash ? (size_t)(slash - manifest_path + 1) : 0;
    json_array_foreach(root, gi, g)
    {
        const json_t *paths = json_object_get(g, "paths");
        for (size_t i = 0; i < json_array_size(paths); i++) {
            const char *p = json_string_value(json_array_get(paths, i));
            if (!path_ok(p)) {
                fl_err_set(err, FL_ERR_CORRUPT, "faceapi: refusing shard path \"%.64s\"", p);
                goto out;
            }
            memcpy(path, manifest_path, dir_len);
            memcpy(path + dir_len, p, strlen(p) + 1);
            if (fl_file_read(path, SHARD_MAX_BYTES, &bufs[n_read], &lens[n_read], err) != FL_OK)
                goto out;
            n_read++;
        }
    }
    w = build(root, (const void *const *)bufs, lens, n_paths, err);
out:
    for (size_t i = 0; i < n_read; i++)
        fl_free(bufs[i]);
    fl_free(bufs);
    fl_free(lens);
    fl_free(path);
    json_decref(root);
    fl_free(text);
    return w;
}
