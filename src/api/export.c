/*
 * export.c: FaceLinkService.ExportCollection, ImportFaces and the staged
 * import (StartImport, CommitImport, AbortImport, DescribeImport): a
 * collection's faces, vectors, users and retained crops out of FaceLink and
 * back in, for collections of any size (DESIGN.md §8, export format
 * version 1; docs/internals/api.md gives the wire details).
 *
 * The export is a set of named files:
 *
 *   manifest.json   format and version, collection, the model's provenance
 *                   (id, FaceModelVersion, dimension, metric, normalisation,
 *                   alignment), dtype and byte order, the calibration (the
 *                   service's distance -> Similarity mapping, sampled),
 *                   counts, the snapshot point, times, and the size and
 *                   sha256 of the four streamed files
 *   faces.jsonl     one line per face in FaceId order: every member of
 *                   Rekognition's Face, Created, Embedding (base64 of
 *                   little-endian float32) and Crop (the crops/ file) if kept
 *   embeddings.npy  N x D float32 little-endian in faces.jsonl order (NumPy
 *                   format 1.0, a 128-byte header), for direct use elsewhere
 *   users.jsonl     one line per user: UserId, UserStatus
 *   pgvector.sql    a psql script: COPY into a staging table, then a
 *                   facelink_faces table with a vector(D) column when the
 *                   pgvector extension can be created, real[] otherwise
 *   crops/<FaceId>.flc   the retained crop blobs (crop.c; IncludeCrops)
 *
 * Export in pages. ExportCollection with MaxResults / NextToken answers one
 * page: the parts of the four streamed files to append (faces in FaceId
 * order, then users), the crops of its faces, and a NextToken; the first
 * page starts embeddings.npy with a header for 0 rows (its length does not
 * depend on the count) and pgvector.sql with its head; the last ends
 * pgvector.sql, patches the npy header with the row count and brings the
 * manifest as exact JSON text, to which the client adds the files' sizes and
 * checksums. A page stops at MaxResults records or ~PAGE_BYTES, so memory is
 * bounded on both sides whatever the collection's size.
 *
 * Consistency, decided: no read snapshot spans requests (a SQLite read
 * transaction would have to stay open between them and pin the WAL).
 * Instead the first page records the store's change sequence and the
 * collection's largest face key. Keys only grow, so every page drops faces
 * with a larger key: faces added during the export never appear, and each
 * face present throughout appears exactly once (keyset pagination by
 * FaceId). Deletions and user changes during the export cannot be undone
 * that way; the last page counts them in the change log since the recorded
 * sequence and the manifest says PointInTime only when there were none. The
 * token carries the snapshot, the counts so far and a check over itself, the
 * collection, IncludeCrops and the model (a damaged or foreign token, or one
 * that outlived a ReindexCollection, is InvalidPaginationTokenException).
 * Without MaxResults and NextToken the answer is the whole export at once
 * (the same page code under one shared lock), up to LEGACY_MAX_FACES.
 *
 * Import checks the manifest (format, version, the model id known here and
 * its dimension, a collection of that model or none), parses every line
 * before staging it, keeps FaceIds, ImageIds, ExternalImageIds, UserIds,
 * creation times and crops, and is:
 *   - idempotent: a face whose FaceId is already in the collection with the
 *     same content is skipped; the same FaceId with other content is a
 *     ConflictException and nothing changes;
 *   - all-or-nothing, in either form:
 *     staged (any size): StartImport opens an import in the store, each
 *     ImportFaces {ImportId, Files} stages a page where nothing else looks
 *     (a page sent twice is harmless), and CommitImport moves everything in
 *     with ONE store transaction under the exclusive service lock, through
 *     fl__api_coll_switch, the switch ReindexCollection uses (reindex.c):
 *     the index is rebuilt from the committed store and swapped in. The
 *     commit checks the staged count against the manifest's, and is
 *     idempotent (the import keeps its counts). An import never committed
 *     (client killed, AbortImport, or untouched for IMPORT_TTL_S, dropped at
 *     the next StartImport or commit) changes nothing;
 *     in one request (small): ImportFaces {Files} checks everything first,
 *     then writes the collection (if new), the missing users, and every new
 *     face in ONE store transaction (fl__api_faces_commit); if a later
 *     write fails the earlier ones are undone. Bounded by the request body.
 *
 * Threading: export is a read-only handler (shared lock) that pages through
 * the store; StartImport, ImportFaces and CommitImport / AbortImport are
 * writing handlers (exclusive lock); DescribeImport reads.
 */
#include "api/api.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE             1000              /* records per store read; MaxResults default */
#define PAGE_BYTES       ((size_t)8 << 20) /* an export page stops growing past this */
#define CROP_FETCH       64                /* faces read per store call with their crops */
#define LEGACY_MAX_FACES 20000             /* the largest export answered in one piece */
#define NPY_HEADER       128               /* bytes of the embeddings.npy header */
#define IMPORT_TTL_S     (24.0 * 3600.0)   /* an import untouched this long is dropped */
#define FORMAT_NAME      "facelink-export"
#define FORMAT_VERSION   1
#define FILE_MAX         ((size_t)1 << 31)
#define DUMP             (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
#define MAN_DUMP         (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
#define IPE              "Request has invalid parameters: "

/* ============================== Helpers ============================== */

static void f32_le(float f, uint8_t out[4])
{
    uint32_t u;
    memcpy(&u, &f, 4);
    out[0] = (uint8_t)u;
    out[1] = (uint8_t)(u >> 8);
    out[2] = (uint8_t)(u >> 16);
    out[3] = (uint8_t)(u >> 24);
}

static float le_f32(const uint8_t p[4])
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static json_t *b64_json(const void *p, size_t n)
{
    char *s = fl_malloc(fl_base64_encoded_len(n) + 1);
    json_t *v;
    if (!s)
        return NULL;
    fl_base64_encode(p, n, s);
    v = json_string(s);
    fl_free(s);
    return v;
}

/* Append s to a COPY text-format field (backslash, tab, newline escaped). */
static enum fl_status copy_field(struct fl_buf *b, const char *s, struct fl_err *err)
{
    enum fl_status rc = FL_OK;
    if (!s)
        return fl_buf_append(b, "\\N", 2, err);
    for (; *s && rc == FL_OK; s++) {
        if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r') {
            char e[2] = {'\\', *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\'};
            rc = fl_buf_append(b, e, 2, err);
        } else {
            rc = fl_buf_append(b, s, 1, err);
        }
    }
    return rc;
}

/* ============================== Export ============================== */

/* What one or more pages produced: the parts of faces.jsonl, the npy rows,
 * users.jsonl and the COPY rows of pgvector.sql, and the crop files. */
struct export_files {
    struct fl_buf faces, npy_data, users, copy;
    json_t *crops; /* name -> base64, into Files */
    size_t n_faces, n_users, n_crops;
    size_t crop_bytes;
};

static void export_files_init(struct export_files *x)
{
    memset(x, 0, sizeof(*x));
    fl_buf_init(&x->faces, FILE_MAX);
    fl_buf_init(&x->npy_data, FILE_MAX);
    fl_buf_init(&x->users, FILE_MAX);
    fl_buf_init(&x->copy, FILE_MAX);
    x->crops = json_object();
}

static void export_files_fini(struct export_files *x)
{
    fl_buf_fini(&x->faces);
    fl_buf_fini(&x->npy_data);
    fl_buf_fini(&x->users);
    fl_buf_fini(&x->copy);
    json_decref(x->crops);
}

static size_t export_bytes(const struct export_files *x)
{
    return x->faces.len + x->npy_data.len + x->users.len + x->copy.len + x->crop_bytes;
}

static enum fl_status export_face(struct fl__api_coll *c, const struct fl_store_face *f,
                                  bool with_crop, struct export_files *x, struct fl_err *err)
{
    uint32_t dim = c->model->dim;
    uint8_t *le = NULL;
    json_t *o = NULL;
    char *line = NULL, name[64];
    enum fl_status rc = FL_ERR_NOMEM;
    if (!f->embedding || f->dim != dim)
        return fl_err_set(err, FL_ERR_CORRUPT, "face %s has no usable embedding", f->face_id);
    le = fl_malloc((size_t)dim * 4);
    if (!le)
        goto nomem;
    for (uint32_t k = 0; k < dim; k++)
        f32_le(f->embedding[k], le + 4 * k);
    o = fl__api_face_json(f);
    if (!o || !fl__api_set(o, "Created", json_real(f->created)) ||
        !fl__api_set(o, "Embedding", b64_json(le, (size_t)dim * 4)))
        goto nomem;
    if (with_crop && f->crop) {
        snprintf(name, sizeof(name), "crops/%s.flc", f->face_id);
        if (!fl__api_set(o, "Crop", json_string(name)) ||
            !fl__api_set(x->crops, name, b64_json(f->crop, f->crop_len)))
            goto nomem;
        x->n_crops++;
        x->crop_bytes += f->crop_len;
    }
    line = json_dumps(o, DUMP);
    if (!line)
        goto nomem;
    rc = fl_buf_printf(&x->faces, err, "%s\n", line);
    if (rc == FL_OK)
        rc = fl_buf_append(&x->npy_data, le, (size_t)dim * 4, err);
    /* pgvector.sql COPY row */
    if (rc == FL_OK)
        rc = fl_buf_printf(&x->copy, err, "%s\t%s\t", f->face_id, f->image_id);
    if (rc == FL_OK)
        rc = copy_field(&x->copy, f->external_image_id, err);
    if (rc == FL_OK)
        rc = fl_buf_append(&x->copy, "\t", 1, err);
    if (rc == FL_OK)
        rc = copy_field(&x->copy, f->user_id, err);
    if (rc == FL_OK)
        rc = fl_buf_printf(&x->copy, err, "\t%.9g\t%.9g\t%.9g\t%.9g\t%.9g\t%.3f\t[",
                           (double)f->bbox.left, (double)f->bbox.top, (double)f->bbox.width,
                           (double)f->bbox.height, (double)f->confidence, f->created);
    for (uint32_t k = 0; rc == FL_OK && k < dim; k++)
        rc = fl_buf_printf(&x->copy, err, "%s%.9g", k ? "," : "", (double)f->embedding[k]);
    if (rc == FL_OK)
        rc = fl_buf_append(&x->copy, "]\n", 2, err);
    x->n_faces++;
    goto out;
nomem:
    rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (export)");
out:
    fl_free(line);
    json_decref(o);
    fl_free(le);
    return rc;
}

/* The header of embeddings.npy: NumPy format 1.0, '<f4', C order, (n, dim),
 * padded to NPY_HEADER bytes (a multiple of 64, as NumPy writes it). The
 * length does not depend on n, so a paged export writes it first with n = 0
 * and overwrites it in place at the end. */
static enum fl_status npy_header(size_t n, uint32_t dim, struct fl_buf *out, struct fl_err *err)
{
    char dict[160];
    int dl = snprintf(dict, sizeof(dict),
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %u), }", n, dim);
    size_t pad = NPY_HEADER - 10 - (size_t)dl - 1, hl = NPY_HEADER - 10;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    enum fl_status rc;
    FL_ASSERT(dl > 0 && 10 + (size_t)dl + 1 <= NPY_HEADER);
    pre[8] = (uint8_t)hl;
    pre[9] = (uint8_t)(hl >> 8);
    rc = fl_buf_append(out, pre, 10, err);
    if (rc == FL_OK)
        rc = fl_buf_append(out, dict, (size_t)dl, err);
    for (size_t i = 0; rc == FL_OK && i < pad; i++)
        rc = fl_buf_append(out, " ", 1, err);
    if (rc == FL_OK)
        rc = fl_buf_append(out, "\n", 1, err);
    return rc;
}

static enum fl_status pgvector_head(const struct fl__api_coll *c, struct fl_buf *out,
                                    struct fl_err *err)
{
    const struct fl_face_model_info *mi = fl_face_model_info(c->model->face_model);
    return fl_buf_printf(
        out, err,
        "-- FaceLink export of collection '%s': %s (FaceModelVersion %s), %u dimensions, %s.\n"
        "-- Load with: psql -v ON_ERROR_STOP=1 -f pgvector.sql DBNAME\n"
        "-- Rows go into facelink_faces (created if missing). Its embedding column is\n"
        "-- vector(%u) when the pgvector extension exists (or can be created), real[]\n"
        "-- otherwise. With pgvector, search by %s with the %s operator.\n"
        "BEGIN;\n"
        "CREATE TEMP TABLE facelink_import (face_id uuid, image_id uuid, external_image_id text,\n"
        "    user_id text, bbox_left real, bbox_top real, bbox_width real, bbox_height real,\n"
        "    confidence real, created double precision, embedding text) ON COMMIT DROP;\n"
        "COPY facelink_import FROM stdin;\n",
        c->id, mi->id, mi->face_model_version, c->model->dim, mi->metric, c->model->dim, mi->metric,
        mi->normalised ? "<=> (cosine distance)" : "<-> (Euclidean distance)");
}

static enum fl_status pgvector_tail(const struct fl__api_coll *c, struct fl_buf *out,
                                    struct fl_err *err)
{
    const struct fl_face_model_info *mi = fl_face_model_info(c->model->face_model);
    return fl_buf_printf(
        out, err,
        "\\.\n"
        "DO $fl$\n"
        "DECLARE has_vector boolean := false; coltype text;\n"
        "BEGIN\n"
        "    BEGIN\n"
        "        CREATE EXTENSION IF NOT EXISTS vector;\n"
        "        has_vector := true;\n"
        "    EXCEPTION WHEN others THEN\n"
        "        has_vector := false;\n"
        "    END;\n"
        "    IF to_regclass('facelink_faces') IS NULL THEN\n"
        "        EXECUTE format('CREATE TABLE facelink_faces (collection_id text NOT NULL,\n"
        "            face_id uuid NOT NULL, image_id uuid NOT NULL, external_image_id text,\n"
        "            user_id text, bbox_left real, bbox_top real, bbox_width real,\n"
        "            bbox_height real, confidence real, created double precision,\n"
        "            model_id text NOT NULL, embedding %%s NOT NULL,\n"
        "            PRIMARY KEY (collection_id, face_id))',\n"
        "            CASE WHEN has_vector THEN 'vector(%u)' ELSE 'real[]' END);\n"
        "    END IF;\n"
        "    SELECT udt_name INTO coltype FROM information_schema.columns\n"
        "        WHERE table_name = 'facelink_faces' AND column_name = 'embedding'\n"
        "        ORDER BY table_schema = current_schema() DESC LIMIT 1;\n"
        "    EXECUTE format('INSERT INTO facelink_faces SELECT %%L, face_id, image_id,\n"
        "        external_image_id, user_id, bbox_left, bbox_top, bbox_width, bbox_height,\n"
        "        confidence, created, %%L, %%s FROM facelink_import\n"
        "        ON CONFLICT (collection_id, face_id) DO NOTHING',\n"
        "        '%s', '%s',\n"
        "        CASE WHEN coltype = 'vector' THEN 'embedding::vector'\n"
        "             ELSE 'translate(embedding, ''[]'', ''{}'')::real[]' END);\n"
        "END\n"
        "$fl$;\n"
        "COMMIT;\n",
        c->model->dim, c->id, mi->id);
}

/* The service's distance -> Similarity mapping, sampled: the index distance
 * (squared Euclidean for euclidean models, 1 - cosine for cosine ones) at
 * Euclidean radii / cosine distances 0, 1/32, ..., 2. */
static json_t *calibration_json(const struct fl__api_model *m)
{
    json_t *o = json_object(), *d = json_array(), *s = json_array();
    bool ok = fl__api_set(o, "Description",
                          json_string(m->metric == FL_INDEX_COSINE
                                          ? "Similarity (0-100) for the cosine distance "
                                            "1 - cos(a, b), as this service computes it"
                                          : "Similarity (0-100) for the squared Euclidean "
                                            "distance, as this service computes it")) &&
              fl__api_set(o, "Distance", d) && fl__api_set(o, "Similarity", s);
    for (int i = 0; ok && i <= 64; i++) {
        double r = i / 32.0, dist = m->metric == FL_INDEX_COSINE ? r : r * r;
        ok = fl__api_push(d, fl__api_real(dist)) &&
             fl__api_push(s, fl__api_real(fl__api_similarity(m->model_id, (float)dist)));
    }
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}

static bool file_entry(json_t *files_meta, json_t *files, const char *name, struct fl_buf *b)
{
    char hex[65];
    json_t *e = json_object();
    fl_sha256_hex(b->data ? b->data : "", b->len, hex);
    return fl__api_set(files_meta, name, e) &&
           fl__api_set(e, "Bytes", json_integer((json_int_t)b->len)) &&
           fl__api_set(e, "Sha256", json_string(hex)) &&
           fl__api_set(files, name, b64_json(b->data ? b->data : "", b->len));
}

/* ------------------------------ The snapshot ------------------------------ */

/* Where a paged export is, carried from page to page in NextToken:
 *
 *   E1.<phase>.<seq0>.<kmax>.<t0 ms>.<faces>.<users>.<crops>.<check>.<after>
 *
 * phase 0 lists faces (FaceId order), 1 users (UserId order); seq0 is the
 * store's change sequence and kmax the largest face key of the collection
 * when the export began (faces with a larger key were added since and are
 * left out); t0 is ExportedAt; the counts are what earlier pages exported;
 * after is the last FaceId / UserId exported ("" at a phase's start);
 * check is the first 16 hex digits of the SHA-256 of everything else and
 * of the collection, IncludeCrops and the model, so a token is refused when
 * it is damaged or used with another collection, another IncludeCrops or
 * after a ReindexCollection changed the model. */
struct export_token {
    int phase;
    uint64_t seq0;
    int64_t kmax;
    uint64_t t0_ms;
    uint64_t n_faces, n_users, n_crops;
    char after[FL_STORE_USER_ID_MAX + 1];
};

static void token_check(const char *body, const char *coll, bool crops, const char *model_id,
                        char out[17])
{
    char text[2 * 1024], hex[65];
    int n = snprintf(text, sizeof(text), "%s|%s|%d|%s", body, coll, crops ? 1 : 0, model_id);
    FL_ASSERT(n > 0 && (size_t)n < sizeof(text));
    fl_sha256_hex(text, (size_t)n, hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
}

/* The token text (fl_free) or NULL on no memory. */
static char *token_make(const struct export_token *t, const char *coll, bool crops,
                        const char *model_id)
{
    char head[256], check[17], *s;
    size_t n;
    snprintf(head, sizeof(head), "E1.%d.%llu.%lld.%llu.%llu.%llu.%llu.", t->phase,
             (unsigned long long)t->seq0, (long long)t->kmax, (unsigned long long)t->t0_ms,
             (unsigned long long)t->n_faces, (unsigned long long)t->n_users,
             (unsigned long long)t->n_crops);
    {
        char body[256 + FL_STORE_USER_ID_MAX + 2];
        snprintf(body, sizeof(body), "%s%s", head, t->after);
        token_check(body, coll, crops, model_id, check);
    }
    n = strlen(head) + 17 + 1 + strlen(t->after) + 1;
    s = fl_malloc(n);
    if (s)
        snprintf(s, n, "%s%s.%s", head, check, t->after);
    return s;
}

static bool parse_u64(const char **p, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (**p < '0' || **p > '9')
        return false;
    errno = 0;
    v = strtoull(*p, &end, 10);
    if (errno || *end != '.')
        return false;
    *out = v;
    *p = end + 1;
    return true;
}

/* Parse and check a token; FL_ERR_PAGINATION when it is not one of ours for
 * this collection, IncludeCrops and model. */
static enum fl_status token_parse(const char *s, const char *coll, bool crops, const char *model_id,
                                  struct export_token *t, struct fl_err *err)
{
    const char *p = s, *check;
    uint64_t v[7];
    char body[256 + FL_STORE_USER_ID_MAX + 2], want[17];
    size_t head_len, after_len;
    memset(t, 0, sizeof(*t));
    if (strncmp(p, "E1.", 3) != 0)
        goto bad;
    p += 3;
    for (int i = 0; i < 7; i++)
        if (!parse_u64(&p, &v[i]))
            goto bad;
    check = p;
    for (int i = 0; i < 16; i++)
        if (!((check[i] >= '0' && check[i] <= '9') || (check[i] >= 'a' && check[i] <= 'f')))
            goto bad;
    if (check[16] != '.')
        goto bad;
    head_len = (size_t)(check - s);
    after_len = strlen(check + 17);
    if (v[0] > 1 || v[2] > (uint64_t)INT64_MAX || head_len >= 256 ||
        after_len > FL_STORE_USER_ID_MAX)
        goto bad;
    memcpy(body, s, head_len);
    memcpy(body + head_len, check + 17, after_len + 1);
    token_check(body, coll, crops, model_id, want);
    if (memcmp(want, check, 16) != 0)
        goto bad;
    t->phase = (int)v[0];
    t->seq0 = v[1];
    t->kmax = (int64_t)v[2];
    t->t0_ms = v[3];
    t->n_faces = v[4];
    t->n_users = v[5];
    t->n_crops = v[6];
    memcpy(t->after, check + 17, after_len + 1);
    if (after_len && (t->phase == 0 ? !fl_uuid_valid(t->after)
                                    : fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", t->after) != 1))
        goto bad;
    return FL_OK;
bad:
    return fl_err_set(err, FL_ERR_PAGINATION, "Invalid Token");
}

/* The changes to collection id since seq0 that an export which began at
 * (seq0, kmax) may have seen half of: faces deleted or (dis)associated,
 * users created or deleted, the collection deleted, recreated or re-indexed.
 * *known false when the change log was pruned past seq0. */
static enum fl_status changes_during(struct fl_store *st, const char *id, uint64_t seq0,
                                     int64_t kmax, uint64_t *out_n, bool *known, struct fl_err *err)
{
    struct fl_arena a;
    uint64_t after = seq0, n = 0;
    enum fl_status rc = FL_OK;
    bool first = true;
    *known = true;
    fl_arena_init(&a, 0);
    for (;;) {
        struct fl_store_change_list l;
        fl_arena_reset(&a);
        rc = fl_store_changes_since(st, after, PAGE, &a, &l, err);
        if (rc != FL_OK || l.n == 0)
            break;
        if (first && l.v[0].seq > seq0 + 1)
            *known = false;
        first = false;
        for (size_t i = 0; i < l.n; i++) {
            const struct fl_store_change *ch = &l.v[i];
            if (strcmp(ch->collection, id) != 0)
                continue;
            switch (ch->op) {
            case FL_STORE_CHANGE_FACE_DELETE:
            case FL_STORE_CHANGE_FACE_USER:
                n += ch->face_key <= kmax;
                break;
            case FL_STORE_CHANGE_FACE_PUT:
            case FL_STORE_CHANGE_TAGS:
                break;
            default:
                n++;
            }
        }
        after = l.v[l.n - 1].seq;
        if (l.n < PAGE)
            break;
    }
    fl_arena_fini(&a);
    if (rc == FL_OK)
        *out_n = n;
    return rc;
}

/* Export faces, then users, from where t is, until limit records are in x,
 * x holds about PAGE_BYTES, or everything is exported (*done). t advances. */
static enum fl_status export_page(struct fl__api_ctx *ctx, struct fl__api_coll *c, bool with_crops,
                                  size_t limit, struct export_token *t, struct export_files *x,
                                  bool *done, struct fl_err *err)
{
    struct fl_arena pa;
    size_t count = 0;
    enum fl_status rc = FL_OK;
    bool full = false;
    *done = false;
    fl_arena_init(&pa, 0);
    while (rc == FL_OK && count < limit && !full && !*done) {
        fl_arena_reset(&pa);
        if (t->phase == 0) {
            struct fl_store_face_query q;
            struct fl_store_face_list l;
            size_t i;
            memset(&q, 0, sizeof(q));
            q.collection = c->id;
            q.after = t->after[0] ? t->after : NULL;
            q.limit = limit - count;
            if (with_crops && q.limit > CROP_FETCH)
                q.limit = CROP_FETCH;
            q.flags = FL_STORE_WANT_EMBEDDING | (with_crops ? FL_STORE_WANT_CROP : 0);
            rc = fl_store_faces_list(ctx->st, &q, &pa, &l, err);
            for (i = 0; rc == FL_OK && i < l.n && !full; i++) {
                if (l.v[i].key <= t->kmax) { /* later keys: added after the export began */
                    rc = export_face(c, &l.v[i], with_crops, x, err);
                    count++;
                }
                memcpy(t->after, l.v[i].face_id, FL_UUID_STR_LEN + 1);
                full = export_bytes(x) >= PAGE_BYTES;
            }
            if (rc == FL_OK && i == l.n && !l.next) {
                t->phase = 1;
                t->after[0] = '\0';
            }
        } else {
            struct fl_store_user_page up;
            rc = fl_store_users_list(ctx->st, c->id, t->after[0] ? t->after : NULL, limit - count,
                                     &pa, &up, err);
            for (size_t i = 0; rc == FL_OK && i < up.n; i++) {
                json_t *u = json_pack("{s:s,s:s}", "UserId", up.v[i].user_id, "UserStatus",
                                      fl_store_user_status_name(up.v[i].status));
                char *line = u ? json_dumps(u, DUMP) : NULL;
                json_decref(u);
                if (!line) {
                    rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (export)");
                    break;
                }
                rc = fl_buf_printf(&x->users, err, "%s\n", line);
                fl_free(line);
                x->n_users++;
                count++;
                snprintf(t->after, sizeof(t->after), "%s", up.v[i].user_id);
            }
            if (rc == FL_OK && !up.next)
                *done = true;
        }
    }
    fl_arena_fini(&pa);
    return rc;
}

/* The manifest without its "Files" member (the caller appends it last). */
static json_t *manifest_json(const struct fl__api_coll *c, const struct fl_store_collection *sc,
                             const struct export_token *t, uint64_t n_changes, bool known)
{
    json_t *man = json_object(), *counts = json_object(), *snap = json_object();
    bool ok = man && counts && snap;
    ok = ok && fl__api_set(man, "Format", json_string(FORMAT_NAME)) &&
         fl__api_set(man, "FormatVersion", json_integer(FORMAT_VERSION)) &&
         fl__api_set(man, "CollectionId", json_string(c->id)) &&
         fl__api_set(man, "CollectionCreated", json_real(sc->created)) &&
         fl__api_set(man, "ExportedAt", json_real((double)t->t0_ms / 1000.0)) &&
         fl__api_set(man, "FaceModel", fl__api_model_json(c->model)) &&
         fl__api_set(man, "Dtype", json_string("float32")) &&
         fl__api_set(man, "ByteOrder", json_string("little")) &&
         fl__api_set(man, "EmbeddingLayout",
                     json_string("faces.jsonl Embedding: base64 of Dimension little-endian "
                                 "float32; embeddings.npy: rows in faces.jsonl order")) &&
         fl__api_set(man, "Calibration", calibration_json(c->model)) &&
         fl__api_set(man, "Counts", json_incref(counts)) &&
         fl__api_set(counts, "Faces", json_integer((json_int_t)t->n_faces)) &&
         fl__api_set(counts, "Users", json_integer((json_int_t)t->n_users)) &&
         fl__api_set(counts, "Crops", json_integer((json_int_t)t->n_crops)) &&
         (!t->n_crops || fl__api_set(man, "CropFormat",
                                     json_string("FLC1: docs/internals/api.md, Retained crops"))) &&
         fl__api_set(man, "Snapshot", json_incref(snap)) &&
         fl__api_set(snap, "ChangeSeq", json_integer((json_int_t)t->seq0)) &&
         fl__api_set(snap, "ChangesDuringExport",
                     known ? json_integer((json_int_t)n_changes) : json_null()) &&
         fl__api_set(snap, "PointInTime", json_boolean(known && n_changes == 0));
    json_decref(counts);
    json_decref(snap);
    if (ok)
        return man;
    json_decref(man);
    return NULL;
}

/* The first token of an export: the snapshot point. */
static enum fl_status token_start(struct fl__api_ctx *ctx, const char *id, struct export_token *t,
                                  struct fl_err *err)
{
    enum fl_status rc;
    memset(t, 0, sizeof(*t));
    t->t0_ms = (uint64_t)(fl_time_now() * 1000.0);
    rc = fl_store_change_seq(ctx->st, &t->seq0, err);
    if (rc == FL_OK)
        rc = fl_store_faces_key_max(ctx->st, id, &t->kmax, err);
    return rc;
}

/* Add the parts in x to Append (faces.jsonl, embeddings.npy, users.jsonl,
 * pgvector.sql: head + x's rows + tail) and x's crops to Files. */
static bool add_parts(json_t *append, json_t *files, const struct fl_buf *npy_head,
                      const struct export_files *x, const struct fl_buf *pg_head,
                      const struct fl_buf *pg_tail, struct fl_err *err)
{
    struct fl_buf npy, pg;
    bool ok;
    fl_buf_init(&npy, FILE_MAX);
    fl_buf_init(&pg, FILE_MAX);
    ok = fl_buf_append(&npy, npy_head->data ? npy_head->data : "", npy_head->len, err) == FL_OK &&
         fl_buf_append(&npy, x->npy_data.data ? x->npy_data.data : "", x->npy_data.len, err) ==
             FL_OK &&
         fl_buf_append(&pg, pg_head->data ? pg_head->data : "", pg_head->len, err) == FL_OK &&
         fl_buf_append(&pg, x->copy.data ? x->copy.data : "", x->copy.len, err) == FL_OK &&
         fl_buf_append(&pg, pg_tail->data ? pg_tail->data : "", pg_tail->len, err) == FL_OK &&
         fl__api_set(append, "faces.jsonl",
                     b64_json(x->faces.data ? x->faces.data : "", x->faces.len)) &&
         fl__api_set(append, "embeddings.npy", b64_json(npy.data ? npy.data : "", npy.len)) &&
         fl__api_set(append, "users.jsonl",
                     b64_json(x->users.data ? x->users.data : "", x->users.len)) &&
         fl__api_set(append, "pgvector.sql", b64_json(pg.data ? pg.data : "", pg.len));
    if (ok) {
        const char *k;
        json_t *v;
        json_object_foreach(x->crops, k, v)
        {
            if (json_object_set(files, k, v) != 0) {
                ok = false;
                break;
            }
        }
    }
    fl_buf_fini(&npy);
    fl_buf_fini(&pg);
    return ok;
}

/* The whole export in one answer ("Files"), as before paging existed: for
 * collections up to LEGACY_MAX_FACES faces. */
static enum fl_status export_whole(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                   const struct fl_store_collection *sc, bool with_crops,
                                   json_t **out_resp, struct fl_err *err)
{
    struct export_files x;
    struct export_token t;
    struct fl_buf npy, pg;
    char *man_text = NULL;
    json_t *o = NULL, *files, *man = NULL, *fmeta;
    bool done = false;
    enum fl_status rc;

    if (sc->face_count > LEGACY_MAX_FACES)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "collection %s has %llu faces: export it in pages (MaxResults, "
                              "NextToken), as `facelink export` does",
                          c->id, (unsigned long long)sc->face_count);
    export_files_init(&x);
    fl_buf_init(&npy, FILE_MAX);
    fl_buf_init(&pg, FILE_MAX);
    rc = token_start(ctx, c->id, &t, err);
    while (rc == FL_OK && !done)
        rc = export_page(ctx, c, with_crops, PAGE, &t, &x, &done, err);
    if (rc != FL_OK)
        goto out;
    if (!x.crops)
        goto nomem;
    t.n_faces = x.n_faces;
    t.n_users = x.n_users;
    t.n_crops = x.n_crops;
    rc = npy_header(x.n_faces, c->model->dim, &npy, err);
    if (rc == FL_OK && x.npy_data.len)
        rc = fl_buf_append(&npy, x.npy_data.data, x.npy_data.len, err);
    if (rc == FL_OK)
        rc = pgvector_head(c, &pg, err);
    if (rc == FL_OK && x.copy.len)
        rc = fl_buf_append(&pg, x.copy.data, x.copy.len, err);
    if (rc == FL_OK)
        rc = pgvector_tail(c, &pg, err);
    if (rc != FL_OK)
        goto out;
    /* the answer: Files (every file, base64) and the manifest; under the
     * shared service lock nothing changed meanwhile */
    o = json_object();
    files = json_object();
    fmeta = json_object();
    man = manifest_json(c, sc, &t, 0, true);
    if (!fl__api_set(o, "Files", files) || !man || !fl__api_set(man, "Files", fmeta) ||
        !file_entry(fmeta, files, "faces.jsonl", &x.faces) ||
        !file_entry(fmeta, files, "embeddings.npy", &npy) ||
        !file_entry(fmeta, files, "users.jsonl", &x.users) ||
        !file_entry(fmeta, files, "pgvector.sql", &pg))
        goto nomem;
    {
        const char *k;
        json_t *v;
        json_object_foreach(x.crops, k, v)
        {
            if (json_object_set(files, k, v) != 0)
                goto nomem;
        }
    }
    man_text = json_dumps(man, MAN_DUMP);
    if (!man_text || !fl__api_set(files, "manifest.json", b64_json(man_text, strlen(man_text))) ||
        !fl__api_set(o, "Manifest", man))
        goto nomem;
    man = NULL;
    *out_resp = o;
    o = NULL;
    rc = FL_OK;
    goto out;
nomem:
    rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (export)");
out:
    fl_free(man_text);
    json_decref(man);
    json_decref(o);
    export_files_fini(&x);
    fl_buf_fini(&npy);
    fl_buf_fini(&pg);
    return rc;
}

FL__API_HANDLER(fl__api_op_export_collection)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *token = fl__api_get_str(req, "NextToken");
    long long max = fl__api_get_int(req, "MaxResults", 0);
    bool with_crops = !json_is_false(json_object_get(req, "IncludeCrops"));
    struct fl__api_coll *c;
    struct fl_store_collection sc;
    struct export_files x;
    struct export_token t;
    struct fl_buf npy_head, pg_head, pg_tail;
    json_t *o = NULL, *append = NULL, *files = NULL, *man = NULL;
    char *next = NULL, *man_text = NULL;
    bool done = false, first = !token || !token[0];
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_collection_get(ctx->st, id, &ctx->arena, &sc, err);
    if (rc != FL_OK)
        return rc;
    if (first && max <= 0)
        return export_whole(ctx, c, &sc, with_crops, out_resp, err);
    if (max <= 0)
        max = PAGE;
    if (first)
        rc = token_start(ctx, id, &t, err);
    else
        rc = token_parse(token, id, with_crops, c->model->model_id, &t, err);
    if (rc != FL_OK)
        return rc;
    export_files_init(&x);
    fl_buf_init(&npy_head, FILE_MAX);
    fl_buf_init(&pg_head, FILE_MAX);
    fl_buf_init(&pg_tail, FILE_MAX);
    rc = export_page(ctx, c, with_crops, (size_t)max, &t, &x, &done, err);
    if (rc != FL_OK)
        goto out;
    t.n_faces += x.n_faces;
    t.n_users += x.n_users;
    t.n_crops += x.n_crops;
    if (first) {
        rc = npy_header(0, c->model->dim, &npy_head, err);
        if (rc == FL_OK)
            rc = pgvector_head(c, &pg_head, err);
    }
    if (rc == FL_OK && done)
        rc = pgvector_tail(c, &pg_tail, err);
    if (rc != FL_OK)
        goto out;
    o = json_object();
    append = json_object();
    files = json_object();
    if (!x.crops || !fl__api_set(o, "CollectionId", json_string(id)) ||
        !fl__api_set(o, "Append", json_incref(append)) ||
        !fl__api_set(o, "Files", json_incref(files)) ||
        !add_parts(append, files, &npy_head, &x, &pg_head, &pg_tail, err) ||
        !fl__api_set(o, "FacesInPage", json_integer((json_int_t)x.n_faces)) ||
        !fl__api_set(o, "UsersInPage", json_integer((json_int_t)x.n_users)))
        goto nomem;
    if (!done) {
        next = token_make(&t, id, with_crops, c->model->model_id);
        if (!next || !fl__api_set(o, "NextToken", json_string(next)))
            goto nomem;
    } else {
        /* the last page: the header of embeddings.npy with the row count, and
         * the manifest; the client adds "Files" (sizes and checksums of what
         * it wrote) to ManifestJson, which keeps every number exact */
        uint64_t n_changes = 0;
        bool known = true;
        json_t *patch;
        struct fl_buf hdr;
        rc = changes_during(ctx->st, id, t.seq0, t.kmax, &n_changes, &known, err);
        if (rc != FL_OK)
            goto out;
        fl_buf_init(&hdr, FILE_MAX);
        rc = npy_header(t.n_faces, c->model->dim, &hdr, err);
        patch = rc == FL_OK ? json_pack("[{s:s,s:i,s:o}]", "File", "embeddings.npy", "Offset", 0,
                                        "Bytes", b64_json(hdr.data, hdr.len))
                            : NULL;
        fl_buf_fini(&hdr);
        if (rc != FL_OK)
            goto out;
        man = manifest_json(c, &sc, &t, n_changes, known);
        man_text = man ? json_dumps(man, MAN_DUMP) : NULL;
        if (!patch || !fl__api_set(o, "Patch", patch) || !man_text ||
            !fl__api_set(o, "ManifestJson", json_string(man_text)))
            goto nomem;
        if (!fl__api_set(o, "Manifest", man)) {
            man = NULL;
            goto nomem;
        }
        man = NULL;
    }
    *out_resp = o;
    o = NULL;
    rc = FL_OK;
    goto out;
nomem:
    rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (export)");
out:
    fl_free(next);
    fl_free(man_text);
    json_decref(man);
    json_decref(append);
    json_decref(files);
    json_decref(o);
    export_files_fini(&x);
    fl_buf_fini(&npy_head);
    fl_buf_fini(&pg_head);
    fl_buf_fini(&pg_tail);
    return rc;
}

/* ============================== Import ============================== */

/* Files[name] decoded into the arena; *out NULL when absent. */
static enum fl_status file_get(struct fl__api_ctx *ctx, const json_t *files, const char *name,
                               uint8_t **out, size_t *out_len, struct fl_err *err)
{
    const char *b64 = json_string_value(json_object_get(files, name));
    size_t n = b64 ? strlen(b64) : 0, len = 0;
    uint8_t *p;
    *out = NULL;
    *out_len = 0;
    if (!b64)
        return FL_OK;
    p = FL_ARENA_NEW(&ctx->arena, uint8_t, fl_base64_decoded_max(n) + 1);
    if (!p)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    if (fl_base64_decode(b64, n, p, &len, err) != FL_OK)
        return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "Files['%s'] is not base64", name);
    p[len] = 0;
    *out = p;
    *out_len = len;
    return FL_OK;
}

/* A string of the arena copied from a JSON member, or NULL when absent;
 * *bad set when present but not a string matching pattern (NULL: any) of
 * at most max bytes. */
static const char *member_str(struct fl__api_ctx *ctx, const json_t *o, const char *k,
                              const char *pattern, size_t max, bool *bad)
{
    const json_t *v = json_object_get(o, k);
    const char *s;
    size_t n;
    char *copy;
    if (!v || json_is_null(v))
        return NULL;
    s = json_string_value(v);
    if (!s || (n = strlen(s)) == 0 || n > max ||
        (pattern && fl__api_pattern_match(pattern, s) != 1)) {
        *bad = true;
        return NULL;
    }
    copy = FL_ARENA_NEW(&ctx->arena, char, n + 1);
    if (!copy) {
        *bad = true;
        return NULL;
    }
    memcpy(copy, s, n + 1);
    return copy;
}

static bool member_num(const json_t *o, const char *k, double *out)
{
    return fl_json_number(json_object_get(o, k), out) && isfinite(*out);
}

/* One faces.jsonl line into f (strings, embedding and crop in the arena). */
static enum fl_status parse_face(struct fl__api_ctx *ctx, const json_t *files,
                                 const struct fl__api_model *m, const char *line, size_t len,
                                 size_t lineno, struct fl_store_face *f, struct fl_err *err)
{
    json_t *o = NULL, *bb;
    bool bad = false;
    const char *fid, *iid, *emb_b64, *crop_name;
    double l, t, w, h, conf, created;
    uint8_t *raw;
    size_t n = 0;
    float *vec;
    enum fl_status rc = fl_json_parse_object(line, len, &o, err);
    if (rc != FL_OK)
        return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "faces.jsonl line %zu is not a JSON object",
                          lineno);
    memset(f, 0, sizeof(*f));
    fid = json_string_value(json_object_get(o, "FaceId"));
    iid = json_string_value(json_object_get(o, "ImageId"));
    bb = json_object_get(o, "BoundingBox");
    emb_b64 = json_string_value(json_object_get(o, "Embedding"));
    if (!fid || !fl_uuid_valid(fid) || !iid || !fl_uuid_valid(iid) || !emb_b64 ||
        !member_num(bb, "Left", &l) || !member_num(bb, "Top", &t) || !member_num(bb, "Width", &w) ||
        !member_num(bb, "Height", &h) || !member_num(o, "Confidence", &conf)) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                        IPE "faces.jsonl line %zu: FaceId, ImageId (UUIDs), BoundingBox, "
                            "Confidence and Embedding are required",
                        lineno);
        goto out;
    }
    memcpy(f->face_id, fid, FL_UUID_STR_LEN + 1);
    memcpy(f->image_id, iid, FL_UUID_STR_LEN + 1);
    f->external_image_id =
        member_str(ctx, o, "ExternalImageId", "[a-zA-Z0-9_.\\-:]+", FL_STORE_EXTERNAL_ID_MAX, &bad);
    f->user_id = member_str(ctx, o, "UserId", "[a-zA-Z0-9_.\\-]+", FL_STORE_USER_ID_MAX, &bad);
    f->model_version = member_str(ctx, o, "IndexFacesModelVersion", NULL, FL_STORE_NAME_MAX, &bad);
    crop_name = member_str(ctx, o, "Crop", "crops/[a-zA-Z0-9_.\\-]+", 128, &bad);
    if (bad) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                        IPE "faces.jsonl line %zu: a bad ExternalImageId, UserId, "
                            "IndexFacesModelVersion or Crop",
                        lineno);
        goto out;
    }
    if (!f->model_version)
        f->model_version = m->face_model_version;
    f->bbox.left = (float)l;
    f->bbox.top = (float)t;
    f->bbox.width = (float)w;
    f->bbox.height = (float)h;
    f->confidence = (float)conf;
    f->created = member_num(o, "Created", &created) && created > 0 ? created : 0;
    raw = FL_ARENA_NEW(&ctx->arena, uint8_t, fl_base64_decoded_max(strlen(emb_b64)) + 1);
    vec = FL_ARENA_NEW(&ctx->arena, float, m->dim);
    if (!raw || !vec) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
        goto out;
    }
    if (fl_base64_decode(emb_b64, strlen(emb_b64), raw, &n, NULL) != FL_OK ||
        n != (size_t)m->dim * 4) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                        IPE "faces.jsonl line %zu: Embedding must be base64 of %u float32", lineno,
                        m->dim);
        goto out;
    }
    for (uint32_t k = 0; k < m->dim; k++) {
        vec[k] = le_f32(raw + 4 * k);
        if (!isfinite(vec[k])) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                            IPE "faces.jsonl line %zu: Embedding[%u] is not finite", lineno, k);
            goto out;
        }
    }
    f->embedding = vec;
    f->dim = m->dim;
    if (crop_name) {
        uint8_t *crop;
        size_t crop_len;
        rc = file_get(ctx, files, crop_name, &crop, &crop_len, err);
        if (rc != FL_OK)
            goto out;
        f->crop = crop; /* NULL when the export was made without crops/ */
        f->crop_len = crop_len;
    }
out:
    json_decref(o);
    return rc;
}

/* Same face content (what ListFaces shows, and the vector). */
static bool same_face(const struct fl_store_face *a, const struct fl_store_face *b)
{
    const char *ea = a->external_image_id, *eb = b->external_image_id;
    const char *ua = a->user_id, *ub = b->user_id;
    return strcmp(a->image_id, b->image_id) == 0 && (ea && eb ? strcmp(ea, eb) == 0 : ea == eb) &&
           (ua && ub ? strcmp(ua, ub) == 0 : ua == ub) && a->dim == b->dim && a->embedding &&
           b->embedding && memcmp(a->embedding, b->embedding, (size_t)a->dim * 4) == 0 &&
           a->bbox.left == b->bbox.left && a->bbox.top == b->bbox.top &&
           a->bbox.width == b->bbox.width && a->bbox.height == b->bbox.height;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct import_plan {
    const struct fl__api_model *model;
    const char *coll_id;
    double coll_created;
    struct fl_store_face *faces; /* every face of the export */
    size_t n_faces;
    const char **users; /* users.jsonl, then face users, sorted, unique */
    size_t n_users;
};

/* The checks of manifest.json that need no other file: format and version,
 * a face model this service runs with its dimension, a valid CollectionId
 * (req_id, else the manifest's; copied into the arena). *expected (may be
 * NULL) receives Counts.Faces, or -1 when absent. */
static enum fl_status manifest_check(struct fl__api_ctx *ctx, const json_t *man, const char *req_id,
                                     const struct fl__api_model **model, const char **coll_id,
                                     double *coll_created, int64_t *expected, struct fl_err *err)
{
    const json_t *fm = json_object_get(man, "FaceModel");
    const json_t *nf = json_object_get(json_object_get(man, "Counts"), "Faces");
    const char *model_id = json_string_value(json_object_get(fm, "Id"));
    const char *man_id = json_string_value(json_object_get(man, "CollectionId"));
    long long dim = json_integer_value(json_object_get(fm, "Dimension"));
    const struct fl__api_model *m;
    const char *id = req_id ? req_id : man_id;

    if (!json_is_string(json_object_get(man, "Format")) ||
        strcmp(json_string_value(json_object_get(man, "Format")), FORMAT_NAME) != 0 ||
        json_integer_value(json_object_get(man, "FormatVersion")) != FORMAT_VERSION)
        return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "manifest.json: not a %s version %d export",
                          FORMAT_NAME, FORMAT_VERSION);
    m = model_id ? fl__api_model_find(model_id) : NULL;
    if (!m || strcmp(m->model_id, model_id) != 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "manifest.json: face model '%s' is not one this service runs",
                          model_id ? model_id : "(none)");
    if (dim != (long long)m->dim)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "manifest.json: Dimension %lld, model %s has %u", dim, model_id,
                          m->dim);
    if (!id || strlen(id) > FL_STORE_COLLECTION_ID_MAX ||
        fl__api_pattern_match("[a-zA-Z0-9_.\\-]+", id) != 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "no valid CollectionId to import into");
    if (!req_id) { /* borrowed from the manifest, which goes away */
        char *c = FL_ARENA_NEW(&ctx->arena, char, strlen(man_id) + 1);
        if (!c)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
        memcpy(c, man_id, strlen(man_id) + 1);
        id = c;
    }
    *model = m;
    *coll_id = id;
    if (!member_num(man, "CollectionCreated", coll_created))
        *coll_created = 0;
    if (expected)
        *expected =
            json_is_integer(nf) && json_integer_value(nf) >= 0 ? json_integer_value(nf) : -1;
    return FL_OK;
}

/* Everything about the files that can be checked without the store. */
static enum fl_status plan_import(struct fl__api_ctx *ctx, const json_t *req, struct import_plan *p,
                                  struct fl_err *err)
{
    const json_t *files = json_object_get(req, "Files");
    const char *req_id = fl__api_get_str(req, "CollectionId");
    uint8_t *man_b = NULL, *faces_b = NULL, *users_b = NULL, *npy_b = NULL;
    size_t man_n = 0, faces_n = 0, users_n = 0, npy_n = 0, cap_users = 0;
    json_t *man = NULL, *fmeta;
    const char *k;
    json_t *v;
    enum fl_status rc;

    memset(p, 0, sizeof(*p));
    rc = file_get(ctx, files, "manifest.json", &man_b, &man_n, err);
    if (rc == FL_OK && !man_b)
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "Files has no manifest.json");
    if (rc == FL_OK && fl_json_parse_object((const char *)man_b, man_n, &man, NULL) != FL_OK)
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "manifest.json is not a JSON object");
    if (rc != FL_OK)
        goto out;
    rc = manifest_check(ctx, man, req_id, &p->model, &p->coll_id, &p->coll_created, NULL, err);
    if (rc != FL_OK)
        goto out;
    /* every file the manifest lists must match its checksum */
    fmeta = json_object_get(man, "Files");
    json_object_foreach(fmeta, k, v)
    {
        uint8_t *b;
        size_t n;
        char hex[65];
        const char *want = json_string_value(json_object_get(v, "Sha256"));
        rc = file_get(ctx, files, k, &b, &n, err);
        if (rc != FL_OK)
            goto out;
        if (!b)
            continue; /* absent files are allowed (checked below where needed) */
        fl_sha256_hex(b, n, hex);
        if (!want || strcmp(want, hex) != 0) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                            IPE "%s does not match the sha256 in manifest.json", k);
            goto out;
        }
    }
    rc = file_get(ctx, files, "faces.jsonl", &faces_b, &faces_n, err);
    if (rc == FL_OK)
        rc = file_get(ctx, files, "users.jsonl", &users_b, &users_n, err);
    if (rc == FL_OK)
        rc = file_get(ctx, files, "embeddings.npy", &npy_b, &npy_n, err);
    if (rc == FL_OK && !faces_b)
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "Files has no faces.jsonl");
    if (rc != FL_OK)
        goto out;
    /* faces */
    {
        size_t n_lines = 0;
        for (size_t i = 0; i < faces_n; i++)
            n_lines += faces_b[i] == '\n';
        p->faces = FL_ARENA_NEW(&ctx->arena, struct fl_store_face, n_lines + 1);
        if (!p->faces) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
            goto out;
        }
        for (size_t i = 0, lineno = 1; i < faces_n; lineno++) {
            const char *s = (const char *)faces_b + i;
            const char *nl = memchr(s, '\n', faces_n - i);
            size_t len = nl ? (size_t)(nl - s) : faces_n - i;
            i += len + (nl ? 1 : 0);
            if (len == 0)
                continue;
            rc = parse_face(ctx, files, p->model, s, len, lineno, &p->faces[p->n_faces], err);
            if (rc != FL_OK)
                goto out;
            p->n_faces++;
        }
    }
    /* embeddings.npy, when present, must hold the same vectors */
    if (npy_b) {
        size_t want = p->n_faces * p->model->dim * 4, off;
        bool ok = npy_n >= 10 + want && memcmp(npy_b, "\x93NUMPY", 6) == 0;
        off = ok ? npy_n - want : 0;
        for (size_t i = 0; ok && i < p->n_faces; i++)
            for (uint32_t d = 0; ok && d < p->model->dim; d++) {
                uint8_t b[4];
                f32_le(p->faces[i].embedding[d], b);
                ok = memcmp(npy_b + off + (i * p->model->dim + d) * 4, b, 4) == 0;
            }
        if (!ok) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                            IPE "embeddings.npy does not hold the vectors of faces.jsonl");
            goto out;
        }
    }
    /* users: users.jsonl and every face's UserId */
    cap_users = p->n_faces + 1;
    for (size_t i = 0; users_b && i < users_n; i++)
        cap_users += users_b[i] == '\n';
    p->users = FL_ARENA_NEW(&ctx->arena, const char *, cap_users + 1);
    if (!p->users) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
        goto out;
    }
    for (size_t i = 0, lineno = 1; users_b && i < users_n; lineno++) {
        const char *s = (const char *)users_b + i;
        const char *nl = memchr(s, '\n', users_n - i);
        size_t len = nl ? (size_t)(nl - s) : users_n - i;
        json_t *u = NULL;
        bool bad = false;
        const char *uid;
        i += len + (nl ? 1 : 0);
        if (len == 0)
            continue;
        if (fl_json_parse_object(s, len, &u, NULL) != FL_OK) {
            rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "users.jsonl line %zu is not an object",
                            lineno);
            goto out;
        }
        uid = member_str(ctx, u, "UserId", "[a-zA-Z0-9_.\\-]+", FL_STORE_USER_ID_MAX, &bad);
        json_decref(u);
        if (!uid || bad) {
            rc =
                fl_err_set(err, FL_ERR_INVALID_ARG, IPE "users.jsonl line %zu: bad UserId", lineno);
            goto out;
        }
        if (p->n_users < cap_users)
            p->users[p->n_users++] = uid;
    }
    for (size_t i = 0; i < p->n_faces; i++)
        if (p->faces[i].user_id && p->n_users < cap_users)
            p->users[p->n_users++] = p->faces[i].user_id;
    if (p->n_users > 1) {
        size_t w = 1;
        qsort(p->users, p->n_users, sizeof(*p->users), cmp_str);
        for (size_t i = 1; i < p->n_users; i++)
            if (strcmp(p->users[i], p->users[w - 1]) != 0)
                p->users[w++] = p->users[i];
        p->n_users = w;
    }
    /* no FaceId twice */
    {
        const char **ids = FL_ARENA_NEW(&ctx->arena, const char *, p->n_faces + 1);
        if (!ids) {
            rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
            goto out;
        }
        for (size_t i = 0; i < p->n_faces; i++)
            ids[i] = p->faces[i].face_id;
        qsort(ids, p->n_faces, sizeof(*ids), cmp_str);
        for (size_t i = 1; i < p->n_faces; i++)
            if (strcmp(ids[i], ids[i - 1]) == 0) {
                rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "FaceId %s appears twice", ids[i]);
                goto out;
            }
    }
out:
    json_decref(man);
    return rc;
}

static enum fl_status stage_page(struct fl__api_ctx *ctx, json_t *req, json_t **out_resp,
                                 struct fl_err *err);

FL__API_HANDLER(fl__api_op_import_faces)
{
    struct import_plan p;
    struct fl__api_coll *c;
    struct fl_store_face *todo = NULL;
    const char **ids = NULL, **new_users = NULL;
    size_t n_todo = 0, n_present = 0, n_new_users = 0, n_made_users = 0;
    bool new_coll;
    json_t *o = NULL;
    enum fl_status rc;
    if (fl__api_get_str(req, "ImportId"))
        return stage_page(ctx, req, out_resp, err);
    rc = plan_import(ctx, req, &p, err);
    if (rc != FL_OK)
        return rc;
    c = fl__api_coll_find(ctx->svc, p.coll_id);
    new_coll = c == NULL;
    if (c && c->model != p.model)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "collection %s uses model %s, the export was made with %s", p.coll_id,
                          c->model->model_id, p.model->model_id);
    todo = FL_ARENA_NEW(&ctx->arena, struct fl_store_face, p.n_faces + 1);
    ids = FL_ARENA_NEW(&ctx->arena, const char *, p.n_faces + 1);
    new_users = FL_ARENA_NEW(&ctx->arena, const char *, p.n_users + 1);
    if (!todo || !ids || !new_users)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    /* faces already there: the same content is skipped, other content refused */
    if (!new_coll && p.n_faces) {
        struct fl_store_face_list found;
        for (size_t i = 0; i < p.n_faces; i++)
            ids[i] = p.faces[i].face_id;
        rc = fl_store_faces_get(ctx->st, p.coll_id, ids, p.n_faces, FL_STORE_WANT_EMBEDDING,
                                &ctx->arena, &found, err);
        if (rc != FL_OK)
            return rc;
        for (size_t i = 0, j = 0; i < p.n_faces; i++) {
            if (j < found.n && strcmp(found.v[j].face_id, p.faces[i].face_id) == 0) {
                if (!same_face(&found.v[j], &p.faces[i]))
                    return fl_err_set(err, FL_ERR_CONFLICT,
                                      "FaceId %s is already in collection %s with other "
                                      "content; nothing was imported",
                                      p.faces[i].face_id, p.coll_id);
                n_present++;
                j++;
                continue;
            }
            todo[n_todo++] = p.faces[i];
        }
    } else {
        for (size_t i = 0; i < p.n_faces; i++)
            todo[n_todo++] = p.faces[i];
    }
    for (size_t i = 0; i < p.n_users; i++) {
        struct fl_store_user u;
        if (!new_coll) {
            rc = fl_store_user_get(ctx->st, p.coll_id, p.users[i], &u, err);
            if (rc == FL_OK)
                continue;
            if (rc != FL_ERR_NOT_FOUND)
                return rc;
        }
        new_users[n_new_users++] = p.users[i];
    }
    o = json_object();
    if (!fl__api_set(o, "CollectionId", json_string(p.coll_id)) ||
        !fl__api_set(o, "FaceModelVersion", json_string(p.model->face_model_version)) ||
        !fl__api_set(o, "CollectionCreated", json_boolean(new_coll)) ||
        !fl__api_set(o, "FacesImported", json_integer((json_int_t)n_todo)) ||
        !fl__api_set(o, "FacesAlreadyPresent", json_integer((json_int_t)n_present)) ||
        !fl__api_set(o, "UsersCreated", json_integer((json_int_t)n_new_users))) {
        json_decref(o);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    }
    rc = fl__api_prepare(ctx, o, err);
    if (rc != FL_OK)
        goto fail;
    /* the writes; each failure undoes the ones before it */
    if (new_coll) {
        struct fl_store_collection sc;
        rc = fl__api_coll_add(ctx->svc, p.coll_id, p.model, &c, err);
        if (rc != FL_OK)
            goto fail;
        memset(&sc, 0, sizeof(sc));
        sc.id = p.coll_id;
        sc.model_id = p.model->model_id;
        sc.face_model_version = p.model->face_model_version;
        sc.dim = p.model->dim;
        sc.created = p.coll_created;
        rc = fl_store_collection_create(ctx->st, &sc, err);
        if (rc != FL_OK) {
            fl__api_coll_drop(ctx->svc, p.coll_id);
            goto fail;
        }
    }
    for (; n_made_users < n_new_users; n_made_users++) {
        rc = fl_store_user_create(ctx->st, p.coll_id, new_users[n_made_users], NULL, err);
        if (rc != FL_OK)
            goto undo;
    }
    rc = fl__api_faces_commit(ctx, c, todo, n_todo, err);
    if (rc != FL_OK)
        goto undo;
    *out_resp = o;
    return FL_OK;
undo : {
    struct fl_err e2;
    for (size_t i = 0; i < n_made_users; i++)
        if (fl_store_user_delete(ctx->st, p.coll_id, new_users[i], NULL, &e2) != FL_OK)
            FL_LOG_E("api: ImportFaces could not undo user %s: %s", new_users[i], e2.msg);
    if (new_coll) {
        if (fl_store_collection_delete(ctx->st, p.coll_id, &e2) != FL_OK)
            FL_LOG_E("api: ImportFaces could not undo collection %s: %s", p.coll_id, e2.msg);
        fl__api_coll_drop(ctx->svc, p.coll_id);
    }
}
fail:
    json_decref(o);
    return rc;
}

/* ============================== Staged import ============================== */

/* The import named by the request, with its model; ResourceNotFound when
 * the id is unknown (never opened, aborted, or expired). */
static enum fl_status import_load(struct fl__api_ctx *ctx, const char *id,
                                  struct fl_store_import *imp, const struct fl__api_model **m,
                                  struct fl_err *err)
{
    enum fl_status rc = fl_store_import_get(ctx->st, id, &ctx->arena, imp, err);
    if (rc == FL_ERR_NOT_FOUND)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The import id: %s does not exist", id);
    if (rc != FL_OK)
        return rc;
    *m = fl__api_model_find(imp->model_id);
    if (!*m || strcmp((*m)->model_id, imp->model_id) != 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          IPE "import %s uses face model %s, which this service no longer runs", id,
                          imp->model_id);
    return FL_OK;
}

/* Drop the imports nobody touched for IMPORT_TTL_S (abandoned ones). */
static void import_expire(struct fl__api_ctx *ctx)
{
    struct fl_err e;
    size_t n = 0;
    if (fl_store_import_expire(ctx->st, fl_time_now() - IMPORT_TTL_S, &n, &e) != FL_OK)
        FL_LOG_W("api: abandoned imports not dropped: %s", e.msg);
    else if (n)
        FL_LOG_I("api: dropped %zu abandoned import(s)", n);
}

FL__API_HANDLER(fl__api_op_start_import)
{
    const json_t *files = json_object_get(req, "Files");
    const char *req_id = fl__api_get_str(req, "CollectionId");
    const struct fl__api_model *m = NULL;
    struct fl_store_import imp;
    struct fl__api_coll *c;
    char id[FL_UUID_STR_LEN + 1];
    uint8_t *man_b = NULL;
    size_t man_n = 0;
    json_t *man = NULL, *o = NULL;
    enum fl_status rc;

    memset(&imp, 0, sizeof(imp));
    rc = file_get(ctx, files, "manifest.json", &man_b, &man_n, err);
    if (rc == FL_OK && !man_b)
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "Files has no manifest.json");
    if (rc == FL_OK && fl_json_parse_object((const char *)man_b, man_n, &man, NULL) != FL_OK)
        rc = fl_err_set(err, FL_ERR_INVALID_ARG, IPE "manifest.json is not a JSON object");
    if (rc == FL_OK)
        rc = manifest_check(ctx, man, req_id, &m, &imp.collection, &imp.collection_created,
                            &imp.expected_faces, err);
    if (rc != FL_OK)
        goto out;
    c = fl__api_coll_find(ctx->svc, imp.collection);
    if (c && c->model != m) {
        rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                        IPE "collection %s uses model %s, the export was made with %s",
                        imp.collection, c->model->model_id, m->model_id);
        goto out;
    }
    rc = fl_uuid_v4(id, err);
    if (rc != FL_OK)
        goto out;
    imp.id = id;
    imp.model_id = m->model_id;
    imp.face_model_version = m->face_model_version;
    imp.dim = m->dim;
    o = json_object();
    if (!fl__api_set(o, "ImportId", json_string(id)) ||
        !fl__api_set(o, "CollectionId", json_string(imp.collection)) ||
        !fl__api_set(o, "FaceModelVersion", json_string(m->face_model_version)) ||
        !fl__api_set(o, "ExpectedFaces", json_integer((json_int_t)imp.expected_faces)) ||
        !fl__api_set(o, "ExpiresAfterSeconds", json_integer((json_int_t)IMPORT_TTL_S))) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
        goto out;
    }
    rc = fl__api_prepare(ctx, o, err);
    if (rc != FL_OK)
        goto out;
    import_expire(ctx);
    rc = fl_store_import_open(ctx->st, &imp, err);
    if (rc != FL_OK)
        goto out;
    *out_resp = o;
    o = NULL;
out:
    json_decref(man);
    json_decref(o);
    return rc;
}

/* ImportFaces {ImportId, Files}: stage one page (faces.jsonl and users.jsonl
 * parts, the crops their lines name). */
static enum fl_status stage_page(struct fl__api_ctx *ctx, json_t *req, json_t **out_resp,
                                 struct fl_err *err)
{
    const char *id = fl__api_get_str(req, "ImportId");
    const json_t *files = json_object_get(req, "Files");
    const struct fl__api_model *m = NULL;
    struct fl_store_import imp;
    struct fl_store_face *faces = NULL;
    const char **users = NULL;
    uint8_t *faces_b = NULL, *users_b = NULL;
    size_t faces_n = 0, users_n = 0, n_faces = 0, n_users = 0, cap;
    const char *k;
    json_t *v, *o;
    enum fl_status rc = import_load(ctx, id, &imp, &m, err);
    if (rc != FL_OK)
        return rc;
    json_object_foreach((json_t *)files, k, v)
    {
        if (strcmp(k, "faces.jsonl") != 0 && strcmp(k, "users.jsonl") != 0 &&
            strncmp(k, "crops/", 6) != 0)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              IPE "a staged page carries faces.jsonl, users.jsonl and crops/ "
                                  "parts only, not %s (manifest.json goes to StartImport)",
                              k);
    }
    rc = file_get(ctx, files, "faces.jsonl", &faces_b, &faces_n, err);
    if (rc == FL_OK)
        rc = file_get(ctx, files, "users.jsonl", &users_b, &users_n, err);
    if (rc != FL_OK)
        return rc;
    cap = 1;
    for (size_t i = 0; i < faces_n; i++)
        cap += faces_b[i] == '\n';
    faces = FL_ARENA_NEW(&ctx->arena, struct fl_store_face, cap);
    if (!faces)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    for (size_t i = 0, lineno = 1; i < faces_n; lineno++) {
        const char *s = (const char *)faces_b + i;
        const char *nl = memchr(s, '\n', faces_n - i);
        size_t len = nl ? (size_t)(nl - s) : faces_n - i;
        i += len + (nl ? 1 : 0);
        if (len == 0)
            continue;
        rc = parse_face(ctx, files, m, s, len, lineno, &faces[n_faces], err);
        if (rc != FL_OK)
            return rc;
        n_faces++;
    }
    cap = 1;
    for (size_t i = 0; i < users_n; i++)
        cap += users_b[i] == '\n';
    users = FL_ARENA_NEW(&ctx->arena, const char *, cap);
    if (!users)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    for (size_t i = 0, lineno = 1; i < users_n; lineno++) {
        const char *s = (const char *)users_b + i;
        const char *nl = memchr(s, '\n', users_n - i);
        size_t len = nl ? (size_t)(nl - s) : users_n - i;
        json_t *u = NULL;
        bool bad = false;
        const char *uid;
        i += len + (nl ? 1 : 0);
        if (len == 0)
            continue;
        if (fl_json_parse_object(s, len, &u, NULL) != FL_OK)
            return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "users.jsonl line %zu is not an object",
                              lineno);
        uid = member_str(ctx, u, "UserId", "[a-zA-Z0-9_.\\-]+", FL_STORE_USER_ID_MAX, &bad);
        json_decref(u);
        if (!uid || bad)
            return fl_err_set(err, FL_ERR_INVALID_ARG, IPE "users.jsonl line %zu: bad UserId",
                              lineno);
        users[n_users++] = uid;
    }
    rc = fl_store_import_stage(ctx->st, id, faces, n_faces, users, n_users, err);
    if (rc == FL_ERR_CONFLICT && imp.committed)
        return fl_err_set(err, FL_ERR_CONFLICT, "import %s is committed already", id);
    if (rc == FL_ERR_CONFLICT)
        return fl_err_set(err, FL_ERR_CONFLICT,
                          "a FaceId of this page was staged earlier in import %s with other "
                          "content; nothing of the page was staged",
                          id);
    if (rc == FL_ERR_NOT_FOUND) /* aborted or expired meanwhile */
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The import id: %s does not exist", id);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    if (!fl__api_set(o, "ImportId", json_string(id)) ||
        !fl__api_set(o, "CollectionId", json_string(imp.collection)) ||
        !fl__api_set(o, "FacesInPage", json_integer((json_int_t)n_faces)) ||
        !fl__api_set(o, "UsersInPage", json_integer((json_int_t)n_users))) {
        json_decref(o);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    }
    *out_resp = o;
    return FL_OK;
}

static json_t *import_json(const struct fl_store_import *imp, const struct fl__api_model *m)
{
    json_t *o = json_object();
    bool ok = fl__api_set(o, "ImportId", json_string(imp->id)) &&
              fl__api_set(o, "CollectionId", json_string(imp->collection)) &&
              fl__api_set(o, "FaceModelVersion", json_string(m->face_model_version)) &&
              fl__api_set(o, "Status", json_string(imp->committed ? "COMMITTED" : "OPEN"));
    if (ok && imp->committed)
        ok = fl__api_set(o, "CollectionCreated", json_boolean(imp->created_collection)) &&
             fl__api_set(o, "FacesImported", json_integer((json_int_t)imp->faces_imported)) &&
             fl__api_set(o, "FacesAlreadyPresent", json_integer((json_int_t)imp->faces_present)) &&
             fl__api_set(o, "UsersCreated", json_integer((json_int_t)imp->users_created));
    else if (ok)
        ok = fl__api_set(o, "FacesStaged", json_integer((json_int_t)imp->faces_staged)) &&
             fl__api_set(o, "UsersStaged", json_integer((json_int_t)imp->users_staged)) &&
             fl__api_set(o, "ExpectedFaces", json_integer((json_int_t)imp->expected_faces));
    ok = ok && fl__api_set(o, "CreationTimestamp", json_real(imp->created)) &&
         fl__api_set(o, "UpdateTimestamp", json_real(imp->updated));
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}

struct commit_ud {
    const char *id;
    struct fl_arena *a;
    struct fl_store_import out;
};

static enum fl_status commit_fn(struct fl_store *st, void *ud, struct fl_err *err)
{
    struct commit_ud *u = ud;
    return fl_store_import_commit(st, u->id, u->a, &u->out, err);
}

/* No store change: fl__api_coll_switch then only reloads the collection. */
static enum fl_status reload_fn(struct fl_store *st, void *ud, struct fl_err *err)
{
    (void)st;
    (void)ud;
    (void)err;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_commit_import)
{
    const char *id = fl__api_get_str(req, "ImportId");
    const struct fl__api_model *m = NULL;
    struct fl_store_import imp;
    struct fl__api_coll *c;
    struct commit_ud u;
    json_t *o;
    enum fl_status rc = import_load(ctx, id, &imp, &m, err);
    if (rc != FL_OK)
        return rc;
    if (!imp.committed) {
        c = fl__api_coll_find(ctx->svc, imp.collection);
        if (c && c->model != m)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              IPE "collection %s uses model %s, the export was made with %s",
                              imp.collection, c->model->model_id, m->model_id);
        if (imp.expected_faces >= 0 && imp.faces_staged != (uint64_t)imp.expected_faces)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              IPE "import %s has %llu faces staged, its manifest counts %lld; "
                                  "send the missing pages, or abort it",
                              id, (unsigned long long)imp.faces_staged,
                              (long long)imp.expected_faces);
        memset(&u, 0, sizeof(u));
        u.id = id;
        u.a = &ctx->arena;
        /* the whole switch under the exclusive lock this handler holds: the
         * store commit is one transaction, the index is rebuilt from it */
        rc = fl__api_coll_switch(ctx->svc, ctx->st, imp.collection, m, NULL, commit_fn, &u, err);
        if (rc != FL_OK)
            return rc;
        imp = u.out;
        import_expire(ctx);
    } else if (!fl__api_coll_find(ctx->svc, imp.collection)) {
        /* committed, but an earlier answer failed after the store commit
         * (the index rebuild ran out of memory): load the collection now */
        struct fl_store_collection sc;
        rc = fl_store_collection_get(ctx->st, imp.collection, &ctx->arena, &sc, err);
        if (rc == FL_OK)
            rc = fl__api_coll_switch(ctx->svc, ctx->st, imp.collection, m, NULL, reload_fn, NULL, err);
        if (rc != FL_OK && rc != FL_ERR_NOT_FOUND)
            return rc;
    }
    /* a commit is idempotent: when this answer is lost (or cannot be made
     * for memory), the same call returns it again */
    o = import_json(&imp, m);
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_abort_import)
{
    const char *id = fl__api_get_str(req, "ImportId");
    enum fl_status rc = fl_store_import_abort(ctx->st, id, err);
    json_t *o;
    if (rc == FL_ERR_NOT_FOUND)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The import id: %s does not exist", id);
    if (rc != FL_OK)
        return rc;
    o = json_pack("{s:s,s:s}", "ImportId", id, "Status", "ABORTED");
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_describe_import)
{
    const struct fl__api_model *m = NULL;
    struct fl_store_import imp;
    json_t *o;
    enum fl_status rc = import_load(ctx, fl__api_get_str(req, "ImportId"), &imp, &m, err);
    if (rc != FL_OK)
        return rc;
    o = import_json(&imp, m);
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory (import)");
    *out_resp = o;
    return FL_OK;
}
