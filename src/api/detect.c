/*
 * detect.c: the operations that need the face engine: IndexFaces,
 * SearchFacesByImage, SearchUsersByImage, DetectFaces, CompareFaces.
 *
 * NOT IMPLEMENTED YET: the face engine (src/face) is not merged. Requests
 * are fully validated before they get here (types, limits, Image.Bytes as
 * base64 of at most 5 MB, S3Object refused), and the collection must exist
 * for the collection operations; then the handler answers
 * InternalServerError "not implemented yet". When the engine lands,
 * IndexFaces stores faces through fl__api_faces_commit() (service.c), which
 * keeps the store and the index in step.
 *
 * Threading: handlers run under the service lock (service.c).
 */
#include "api/api.h"

static enum fl_status not_yet(const char *op, struct fl_err *err)
{
    return fl_err_set(err, FL_ERR_INTERNAL, "%s is not implemented yet: it needs the face engine",
                      op);
}

static enum fl_status with_collection(struct fl__api_ctx *ctx, const json_t *req, const char *op,
                                      struct fl_err *err)
{
    struct fl__api_coll *c;
    enum fl_status rc =
        fl__api_coll_require(ctx->svc, fl__api_get_str(req, "CollectionId"), &c, err);
    if (rc != FL_OK)
        return rc;
    return not_yet(op, err);
}

FL__API_HANDLER(fl__api_op_index_faces)
{
    (void)out_resp;
    return with_collection(ctx, req, "IndexFaces", err);
}

FL__API_HANDLER(fl__api_op_search_faces_by_image)
{
    (void)out_resp;
    return with_collection(ctx, req, "SearchFacesByImage", err);
}

FL__API_HANDLER(fl__api_op_search_users_by_image)
{
    (void)out_resp;
    return with_collection(ctx, req, "SearchUsersByImage", err);
}

FL__API_HANDLER(fl__api_op_detect_faces)
{
    (void)ctx;
    (void)req;
    (void)out_resp;
    return not_yet("DetectFaces", err);
}

FL__API_HANDLER(fl__api_op_compare_faces)
{
    (void)ctx;
    (void)req;
    (void)out_resp;
    return not_yet("CompareFaces", err);
}
