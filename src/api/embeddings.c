/*
 * embeddings.c: FaceLinkService.GetFaceEmbeddings and
 * FaceLinkService.SearchFacesByEmbedding, the "vectors out, vectors in" half
 * of owning one's embeddings (issue 7).
 *
 * GetFaceEmbeddings: the stored vectors of up to 4096 FaceIds of a
 * collection, with the Face object of each and the model's provenance (what
 * EmbedFaces returns for an image), so a client can use them elsewhere.
 * FaceIds that are not in the collection are listed in UnknownFaceIds rather
 * than failing the call (DeleteFaces' convention for missing ids). Vectors
 * are the stored float32 values widened to double: parsing them back as
 * float32 gives the stored bits exactly.
 *
 * SearchFacesByEmbedding: a vector in, FaceMatches out, through
 * fl__api_face_matches(), the same code SearchFaces and SearchFacesByImage
 * use: same k (MaxFaces, default 4096), same FaceMatchThreshold (default 80)
 * and the same distance -> Similarity mapping. The vector must have the
 * collection's dimension; for cosine models it need not be normalised (the
 * index normalises queries).
 *
 * fl__api_model_json() (the provenance object) is shared with export.c.
 *
 * Threading: both are read-only handlers under the shared service lock.
 */
#include "api/api.h"

#include <math.h>
#include <string.h>

#define MAX_FACES_DEFAULT 4096

json_t *fl__api_model_json(const struct fl__api_model *model)
{
    const struct fl_face_model_info *mi = fl_face_model_info(model->face_model);
    json_t *m = json_object();
    if (m && fl__api_set(m, "Id", json_string(mi->id)) &&
        fl__api_set(m, "Name", json_string(mi->name)) &&
        fl__api_set(m, "FaceModelVersion", json_string(mi->face_model_version)) &&
        fl__api_set(m, "Dimension", json_integer(mi->dim)) &&
        fl__api_set(m, "Metric", json_string(mi->metric)) &&
        fl__api_set(m, "Normalized", json_boolean(mi->normalised)) &&
        fl__api_set(m, "Alignment", json_string(mi->alignment)))
        return m;
    json_decref(m);
    return NULL;
}

json_t *fl__api_vector_json(const float *v, uint32_t dim)
{
    json_t *a = json_array();
    for (uint32_t k = 0; a && k < dim; k++)
        if (!fl__api_push(a, fl__api_real(v[k]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

FL__API_HANDLER(fl__api_op_get_face_embeddings)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const json_t *ids_j = json_object_get(req, "FaceIds");
    size_t n = json_array_size(ids_j);
    struct fl_store_face_list found;
    struct fl__api_coll *c;
    const char **ids;
    json_t *o = NULL, *faces, *unknown;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    ids = FL_ARENA_NEW(&ctx->arena, const char *, n ? n : 1);
    if (!ids)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = json_string_value(json_array_get(ids_j, i));
    rc = fl_store_faces_get(ctx->st, id, ids, n, FL_STORE_WANT_EMBEDDING, &ctx->arena, &found, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    faces = json_array();
    if (!fl__api_set(o, "Faces", faces))
        goto nomem;
    unknown = json_array();
    if (!fl__api_set(o, "UnknownFaceIds", unknown))
        goto nomem;
    /* faces_get keeps the asked order and leaves out missing ids */
    for (size_t i = 0, j = 0; i < n; i++) {
        json_t *f;
        if (j >= found.n || strcmp(found.v[j].face_id, ids[i]) != 0) {
            if (!fl__api_push(unknown, json_string(ids[i])))
                goto nomem;
            continue;
        }
        if (!found.v[j].embedding || found.v[j].dim != c->model->dim) {
            json_decref(o);
            return fl_err_set(err, FL_ERR_CORRUPT, "face %s has no usable embedding", ids[i]);
        }
        f = json_object();
        if (!fl__api_push(faces, f) || !fl__api_set(f, "Face", fl__api_face_json(&found.v[j])) ||
            !fl__api_set(f, "Embedding", fl__api_vector_json(found.v[j].embedding, found.v[j].dim)))
            goto nomem;
        j++;
    }
    if (!fl__api_set(o, "FaceModel", fl__api_model_json(c->model)) ||
        !fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        goto nomem;
    *out_resp = o;
    return FL_OK;
nomem:
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

FL__API_HANDLER(fl__api_op_search_faces_by_embedding)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const json_t *vec_j = json_object_get(req, "Embedding");
    long long max = fl__api_get_int(req, "MaxFaces", MAX_FACES_DEFAULT);
    double thr = fl__api_get_num(ctx, req, "FaceMatchThreshold", 80.0);
    size_t n = json_array_size(vec_j);
    struct fl__api_coll *c;
    float *vec;
    bool nonzero = false;
    json_t *o = NULL, *matches;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    if (n != c->model->dim)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: Embedding has %zu values, collection "
                          "%s (model %s) needs %u",
                          n, id, c->model->model_id, c->model->dim);
    vec = FL_ARENA_NEW(&ctx->arena, float, n);
    if (!vec)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        double d = json_number_value(json_array_get(vec_j, i));
        if (!isfinite(d) || fabs(d) > 3.0e38)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "Request has invalid parameters: Embedding[%zu] is not a finite "
                              "float32",
                              i);
        vec[i] = (float)d;
        nonzero = nonzero || vec[i] != 0.0f;
    }
    if (!nonzero && c->model->metric == FL_INDEX_COSINE)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: a zero Embedding has no direction "
                          "(model %s compares by cosine)",
                          c->model->model_id);
    o = json_object();
    matches = json_array();
    if (!fl__api_set(o, "FaceMatches", matches))
        goto nomem;
    rc = fl__api_face_matches(ctx, c, vec, (size_t)max, NULL, thr, matches, err);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        goto nomem;
    *out_resp = o;
    return FL_OK;
nomem:
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}
