/*
 * tags.c: TagResource, UntagResource, ListTagsForResource on collections.
 *
 * The resource is named by its ARN, "arn:aws:rekognition:<region>:<account>:
 * collection/<CollectionId>" (the form DescribeCollection returns). An ARN
 * that does not have that form is InvalidParameterException; one for
 * another region or account, or for a collection that does not exist, is
 * ResourceNotFoundException. At most 200 tags per collection
 * (ServiceQuotaExceededException past it, nothing changes); keys and values
 * were checked by the validator (keys 1-128 chars, not "aws:"-prefixed).
 *
 * Threading: handlers run under the service lock (service.c).
 */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

#define TAGS_MAX 200

/* Resolve a collection ARN to its in-memory collection. */
static enum fl_status arn_collection(struct fl__api_ctx *ctx, const char *arn,
                                     struct fl__api_coll **out, struct fl_err *err)
{
    static const char pre[] = "arn:aws:rekognition:";
    const char *p = arn, *region, *account, *rest;
    size_t n_region, n_account;
    if (strncmp(p, pre, sizeof(pre) - 1) != 0)
        goto bad;
    region = p + sizeof(pre) - 1;
    account = strchr(region, ':');
    if (!account)
        goto bad;
    n_region = (size_t)(account - region);
    account++;
    rest = strchr(account, ':');
    if (!rest)
        goto bad;
    n_account = (size_t)(rest - account);
    rest++;
    if (strncmp(rest, "collection/", 11) != 0 || rest[11] == '\0')
        goto bad;
    rest += 11;
    if (n_region != strlen(ctx->svc->region) || strncmp(region, ctx->svc->region, n_region) != 0 ||
        n_account != strlen(ctx->svc->account_id) ||
        strncmp(account, ctx->svc->account_id, n_account) != 0) {
        return fl_err_set(err, FL_ERR_NOT_FOUND,
                          "Resource %s not found (this service is region %s, account %s)", arn,
                          ctx->svc->region, ctx->svc->account_id);
    }
    *out = fl__api_coll_find(ctx->svc, rest);
    if (!*out)
        return fl_err_set(err, FL_ERR_NOT_FOUND, "The collection id: %s does not exist", rest);
    return FL_OK;
bad:
    return fl_err_set(err, FL_ERR_INVALID_ARG,
                      "Request has invalid parameters: ResourceArn must be a collection ARN, "
                      "arn:aws:rekognition:<region>:<account>:collection/<CollectionId>");
}

FL__API_HANDLER(fl__api_op_tag_resource)
{
    const json_t *tags = json_object_get(req, "Tags");
    size_t n = json_object_size(tags), i = 0;
    struct fl__api_coll *c;
    struct fl_store_tag *tv;
    const char *k;
    json_t *v, *o;
    enum fl_status rc = arn_collection(ctx, fl__api_get_str(req, "ResourceArn"), &c, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    if (n > 0) {
        tv = FL_ARENA_NEW(&ctx->arena, struct fl_store_tag, n);
        if (!tv) {
            json_decref(o);
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        }
        json_object_foreach((json_t *)tags, k, v)
        {
            tv[i].key = k;
            tv[i].value = json_string_value(v);
            i++;
        }
        rc = fl__api_prepare(ctx, o, err);
        if (rc == FL_OK)
            rc = fl_store_tags_set(ctx->st, c->id, tv, n, TAGS_MAX, err);
        if (rc == FL_ERR_QUOTA)
            rc = fl_err_set(err, FL_ERR_QUOTA, "A collection can have at most %d tags", TAGS_MAX);
        if (rc != FL_OK) {
            json_decref(o);
            return rc;
        }
    }
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_untag_resource)
{
    const json_t *keys = json_object_get(req, "TagKeys");
    size_t n = json_array_size(keys);
    struct fl__api_coll *c;
    const char **kv;
    json_t *o;
    enum fl_status rc = arn_collection(ctx, fl__api_get_str(req, "ResourceArn"), &c, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    if (n > 0) {
        kv = FL_ARENA_NEW(&ctx->arena, const char *, n);
        if (!kv) {
            json_decref(o);
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
            kv[i] = json_string_value(json_array_get(keys, i));
        rc = fl__api_prepare(ctx, o, err);
        if (rc == FL_OK)
            rc = fl_store_tags_remove(ctx->st, c->id, kv, n, err);
        if (rc != FL_OK) {
            json_decref(o);
            return rc;
        }
    }
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_list_tags_for_resource)
{
    struct fl_store_tag_list list;
    struct fl__api_coll *c;
    json_t *o, *tags;
    enum fl_status rc = arn_collection(ctx, fl__api_get_str(req, "ResourceArn"), &c, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_tags_list(ctx->st, c->id, &ctx->arena, &list, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    tags = json_object();
    if (!fl__api_set(o, "Tags", tags))
        goto nomem;
    for (size_t i = 0; i < list.n; i++)
        if (!fl__api_set(tags, list.v[i].key, json_string(list.v[i].value)))
            goto nomem;
    *out_resp = o;
    return FL_OK;
nomem:
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}
