/*
 * collections.c: CreateCollection, DescribeCollection, ListCollections,
 * DeleteCollection.
 *
 * Response shapes follow what the real service answers (REKOGNITION.md §1.3,
 * §4.1): CreateCollection returns CollectionArn WITHOUT the "arn:" prefix and
 * echoes StatusCode 200; DescribeCollection returns CollectionARN (capital
 * ARN) WITH the prefix and CreationTimestamp as epoch seconds with
 * milliseconds; ListCollections returns FaceModelVersions parallel to
 * CollectionIds.
 *
 * Pagination: the store pages by collection id (keyset). NextToken is the
 * last id of the page; a token that is not a valid collection id is
 * InvalidPaginationTokenException. MaxResults absent or 0 means 1000 (the
 * model allows 0..4096 and documents no default; 0 returning an empty page
 * with a token would make no progress).
 *
 * Threading: handlers run under the service lock (service.c).
 */
#include "api/api.h"

#include <math.h>
#include <string.h>

#define LIST_DEFAULT     1000
#define COLLECTION_ID_RE "[a-zA-Z0-9_.\\-]+"
#define TAGS_MAX         200

FL__API_HANDLER(fl__api_op_create_collection)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const json_t *tags = json_object_get(req, "Tags");
    const struct fl__api_model *m = ctx->svc->default_model;
    struct fl_store_collection c;
    struct fl_store_tag *tv = NULL;
    struct fl__api_coll *mc = NULL;
    json_t *o = NULL;
    enum fl_status rc;
    size_t n_tags = json_is_object(tags) ? json_object_size(tags) : 0;

    if (fl__api_coll_find(ctx->svc, id))
        return fl_err_set(err, FL_ERR_EXISTS, "The collection id: %s already exists", id);
    if (n_tags) {
        const char *k;
        json_t *v;
        size_t i = 0;
        tv = FL_ARENA_NEW(&ctx->arena, struct fl_store_tag, n_tags);
        if (!tv)
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        json_object_foreach((json_t *)tags, k, v)
        {
            tv[i].key = k;
            tv[i].value = json_string_value(v);
            i++;
        }
    }
    o = json_object();
    if (!o || !fl__api_set(o, "StatusCode", json_integer(200)) ||
        !fl__api_set(o, "CollectionArn", fl__api_collection_arn(ctx->svc, id, false)) ||
        !fl__api_set(o, "FaceModelVersion", json_string(m->face_model_version))) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    rc = fl__api_prepare(ctx, o, err);
    if (rc != FL_OK)
        goto fail;
    /* in-memory state first: it is the part that can fail for memory, and it
     * is trivially undone, unlike a committed store row */
    rc = fl__api_coll_add(ctx->svc, id, m, &mc, err);
    if (rc != FL_OK)
        goto fail;
    memset(&c, 0, sizeof(c));
    c.id = id;
    c.model_id = m->model_id;
    c.face_model_version = m->face_model_version;
    c.dim = m->dim;
    rc = fl_store_collection_create(ctx->st, &c, err);
    if (rc == FL_ERR_EXISTS)
        rc = fl_err_set(err, FL_ERR_EXISTS, "The collection id: %s already exists", id);
    if (rc != FL_OK)
        goto fail_drop;
    if (n_tags) {
        rc = fl_store_tags_set(ctx->st, id, tv, n_tags, TAGS_MAX, err);
        if (rc != FL_OK) {
            struct fl_err e2;
            if (fl_store_collection_delete(ctx->st, id, &e2) != FL_OK)
                FL_LOG_E("api: could not undo CreateCollection %s: %s", id, e2.msg);
            goto fail_drop;
        }
    }
    *out_resp = o;
    return FL_OK;
fail_drop:
    fl__api_coll_drop(ctx->svc, id);
fail:
    json_decref(o);
    return rc;
}

FL__API_HANDLER(fl__api_op_describe_collection)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    struct fl_store_collection c;
    struct fl__api_coll *mc;
    json_t *o;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &mc, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_collection_get(ctx->st, id, &ctx->arena, &c, err);
    if (rc == FL_ERR_NOT_FOUND)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The collection id: %s does not exist", id);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    if (!o || !fl__api_set(o, "FaceCount", json_integer((json_int_t)c.face_count)) ||
        !fl__api_set(o, "FaceModelVersion", json_string(c.face_model_version)) ||
        !fl__api_set(o, "CollectionARN", fl__api_collection_arn(ctx->svc, id, true)) ||
        !fl__api_set(o, "CreationTimestamp", json_real(round(c.created * 1000.0) / 1000.0)) ||
        !fl__api_set(o, "UserCount", json_integer((json_int_t)c.user_count))) {
        json_decref(o);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_list_collections)
{
    const char *token = fl__api_get_str(req, "NextToken");
    long long max = fl__api_get_int(req, "MaxResults", 0);
    struct fl_store_collection_page page;
    json_t *o = NULL, *ids = NULL, *vers = NULL;
    enum fl_status rc;
    if (max <= 0)
        max = LIST_DEFAULT;
    if (token && token[0] && fl__api_pattern_match(COLLECTION_ID_RE, token) != 1)
        return fl_err_set(err, FL_ERR_PAGINATION, "Invalid Token");
    rc = fl_store_collection_list(ctx->st, token && token[0] ? token : NULL, (size_t)max,
                                  &ctx->arena, &page, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    ids = json_array();
    vers = json_array();
    if (!o || !ids || !vers)
        goto nomem;
    for (size_t i = 0; i < page.n; i++)
        if (!fl__api_push(ids, json_string(page.v[i].id)) ||
            !fl__api_push(vers, json_string(page.v[i].face_model_version)))
            goto nomem;
    if (!fl__api_set(o, "CollectionIds", ids)) {
        ids = NULL;
        goto nomem;
    }
    ids = NULL;
    if (page.next && !fl__api_set(o, "NextToken", json_string(page.next)))
        goto nomem;
    if (!fl__api_set(o, "FaceModelVersions", vers)) {
        vers = NULL;
        goto nomem;
    }
    *out_resp = o;
    return FL_OK;
nomem:
    json_decref(ids);
    json_decref(vers);
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

FL__API_HANDLER(fl__api_op_delete_collection)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    struct fl__api_coll *mc;
    json_t *o;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &mc, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    if (!o || !fl__api_set(o, "StatusCode", json_integer(200))) {
        json_decref(o);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    rc = fl__api_prepare(ctx, o, err);
    if (rc == FL_OK)
        rc = fl_store_collection_delete(ctx->st, id, err);
    if (rc == FL_ERR_NOT_FOUND)
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "The collection id: %s does not exist", id);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    fl__api_coll_drop(ctx->svc, id);
    *out_resp = o;
    return FL_OK;
}
