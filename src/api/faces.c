/*
 * faces.c: ListFaces and DeleteFaces (IndexFaces is in detect.c with the
 * other operations that need the face engine).
 *
 * ListFaces pages by FaceId (ascending, as AWS's examples list them); the
 * NextToken is the last FaceId of the page, and a token that is not a FaceId
 * is InvalidPaginationTokenException. MaxResults absent or 0 means 1000.
 *
 * DeleteFaces never fails per face: unknown ids come back in
 * UnsuccessfulFaceDeletions with FACE_NOT_FOUND and faces that belong to a
 * user with ASSOCIATED_TO_AN_EXISTING_USER and the UserId (REKOGNITION.md
 * §4.4). The keys of the faces are read before the delete so the index can
 * drop exactly the faces the store deleted (both under the exclusive lock).
 *
 * Threading: handlers run under the service lock (service.c).
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#define LIST_DEFAULT 1000
#define FACE_ID_RE   "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

FL__API_HANDLER(fl__api_op_list_faces)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *token = fl__api_get_str(req, "NextToken");
    const json_t *jids = json_object_get(req, "FaceIds");
    long long max = fl__api_get_int(req, "MaxResults", 0);
    struct fl_store_face_query q;
    struct fl_store_face_list list;
    struct fl__api_coll *c;
    const char **ids = NULL;
    json_t *o = NULL, *faces = NULL;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    if (max <= 0)
        max = LIST_DEFAULT;
    if (token && token[0] && fl__api_pattern_match(FACE_ID_RE, token) != 1)
        return fl_err_set(err, FL_ERR_PAGINATION, "Invalid Token");
    memset(&q, 0, sizeof(q));
    q.collection = id;
    q.user_id = fl__api_get_str(req, "UserId");
    q.after = token && token[0] ? token : NULL;
    q.limit = (size_t)max;
    if (json_is_array(jids)) {
        size_t n = json_array_size(jids);
        ids = FL_ARENA_NEW(&ctx->arena, const char *, n);
        if (!ids)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
            ids[i] = json_string_value(json_array_get(jids, i));
        q.face_ids = ids;
        q.n_face_ids = n;
    }
    rc = fl_store_faces_list(ctx->st, &q, &ctx->arena, &list, err);
    if (rc == FL_ERR_NOT_FOUND)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The collection id: %s does not exist", id);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    faces = json_array();
    if (!o || !faces)
        goto nomem;
    for (size_t i = 0; i < list.n; i++)
        if (!fl__api_push(faces, fl__api_face_json(&list.v[i])))
            goto nomem;
    rc = fl__api_set(o, "Faces", faces) ? FL_OK : FL_ERR_NOMEM;
    faces = NULL;
    if (rc != FL_OK)
        goto nomem;
    if (list.next && !fl__api_set(o, "NextToken", json_string(list.next)))
        goto nomem;
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        goto nomem;
    *out_resp = o;
    return FL_OK;
nomem:
    json_decref(faces);
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

/* The DeleteFaces response for outcomes outc[0..n) of ids. */
static enum fl_status build_delete_resp(const char *const *ids, size_t n,
                                        const struct fl_store_outcome *outc, json_t **out,
                                        struct fl_err *err)
{
    json_t *o = json_object(), *deleted, *failed;
    deleted = json_array();
    if (!fl__api_set(o, "DeletedFaces", deleted)) /* owned by o from here */
        goto nomem;
    failed = json_array();
    if (!fl__api_set(o, "UnsuccessfulFaceDeletions", failed))
        goto nomem;
    for (size_t j = 0; j < n; j++) {
        json_t *u, *reasons;
        if (outc[j].code == FL_STORE_DONE) {
            if (!fl__api_push(deleted, json_string(ids[j])))
                goto nomem;
            continue;
        }
        u = json_object();
        if (!fl__api_push(failed, u)) /* u is owned by `failed` from here */
            goto nomem;
        if (!fl__api_set(u, "FaceId", json_string(ids[j])))
            goto nomem;
        if (outc[j].user_id[0] && !fl__api_set(u, "UserId", json_string(outc[j].user_id)))
            goto nomem;
        reasons = json_array();
        if (!fl__api_set(u, "Reasons", reasons)) /* reasons is owned by u from here */
            goto nomem;
        if (!fl__api_push(reasons, json_string(outc[j].code == FL_STORE_FACE_HAS_USER
                                                   ? "ASSOCIATED_TO_AN_EXISTING_USER"
                                                   : "FACE_NOT_FOUND")))
            goto nomem;
    }
    *out = o;
    return FL_OK;
nomem:
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

FL__API_HANDLER(fl__api_op_delete_faces)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const json_t *jids = json_object_get(req, "FaceIds");
    size_t n = json_array_size(jids);
    struct fl_store_face_list before;
    struct fl_store_outcome *outc, *pred;
    struct fl__api_coll *c;
    const char **ids;
    json_t *o = NULL;
    bool same = true;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    ids = FL_ARENA_NEW(&ctx->arena, const char *, n);
    outc = FL_ARENA_NEW(&ctx->arena, struct fl_store_outcome, n);
    pred = FL_ARENA_NEW(&ctx->arena, struct fl_store_outcome, n);
    if (!ids || !outc || !pred)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = json_string_value(json_array_get(jids, i));
    rc = fl_store_faces_get(ctx->st, id, ids, n, 0, &ctx->arena, &before, err);
    if (rc != FL_OK)
        return rc;
    /* Predict the outcomes (we hold the exclusive lock, so only another
     * process could change them) and build the response before the write:
     * once the store has committed, nothing may fail. */
    for (size_t j = 0; j < n; j++) {
        const struct fl_store_face *f = NULL;
        bool repeat = false;
        for (size_t k = 0; k < j; k++)
            if (strcmp(ids[k], ids[j]) == 0)
                repeat = true;
        for (size_t i = 0; i < before.n && !f; i++)
            if (strcmp(before.v[i].face_id, ids[j]) == 0)
                f = &before.v[i];
        memset(&pred[j], 0, sizeof(pred[j]));
        if (!f || (repeat && !f->user_id)) {
            pred[j].code = FL_STORE_FACE_NOT_FOUND;
        } else if (f->user_id) {
            pred[j].code = FL_STORE_FACE_HAS_USER;
            snprintf(pred[j].user_id, sizeof(pred[j].user_id), "%s", f->user_id);
        } else {
            pred[j].code = FL_STORE_DONE;
        }
    }
    rc = build_delete_resp(ids, n, pred, &o, err);
    if (rc != FL_OK)
        return rc;
    rc = fl__api_prepare(ctx, o, err);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    rc = fl_store_faces_delete(ctx->st, id, ids, n, outc, err);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    for (size_t i = 0; i < before.n; i++) {
        /* drop from the index every face the store deleted */
        for (size_t j = 0; j < n; j++) {
            if (outc[j].code == FL_STORE_DONE && strcmp(ids[j], before.v[i].face_id) == 0) {
                fl_index_remove(c->ix, (uint64_t)before.v[i].key, NULL);
                fl__api_keymap_del(&c->keys, before.v[i].key);
                break;
            }
        }
    }
    for (size_t j = 0; j < n; j++)
        if (outc[j].code != pred[j].code || strcmp(outc[j].user_id, pred[j].user_id) != 0)
            same = false;
    if (!same) {
        FL_LOG_W("api: DeleteFaces outcomes in %s changed under us (another writer?)", id);
        json_decref(o);
        o = NULL;
        rc = build_delete_resp(ids, n, outc, &o, err);
        if (rc == FL_OK)
            rc = fl__api_prepare(ctx, o, err);
        if (rc != FL_OK) {
            json_decref(o);
            return rc;
        }
    }
    *out_resp = o;
    return FL_OK;
}
