/*
 * users.c: CreateUser, DeleteUser, ListUsers, AssociateFaces,
 * DisassociateFaces.
 *
 * Idempotency (ClientRequestToken) is kept by the store in the same
 * transaction as the change (store.h). The API layer adds the semantic
 * rules of REKOGNITION.md §1.5 / §4.4:
 *   - a duplicate UserId is ConflictException; a missing collection or user
 *     is ResourceNotFoundException;
 *   - AssociateFaces: at most 100 faces per user (ServiceQuotaExceeded-
 *     Exception, nothing changes); per-face failures are reported in the
 *     body, not as errors; faces already on this user are silently ignored
 *     (they appear in neither list); once the user has at least one face, a
 *     new face must reach UserMatchThreshold (default 75) against the user's
 *     existing faces (best match), else it is refused with
 *     LOW_MATCH_CONFIDENCE and that best Similarity as Confidence. Faces
 *     added by the same call are not compared with each other.
 *   - DisassociateFaces: FACE_NOT_FOUND, or ASSOCIATED_TO_A_DIFFERENT_USER
 *     with the other UserId. A face that has no user at all is also reported
 *     as ASSOCIATED_TO_A_DIFFERENT_USER, without a UserId (the model has no
 *     better reason; documented deviation).
 *   - ListUsers: MaxResults 1..500, default 500 (our choice); pages by UserId;
 *     NextToken is the last UserId of the page.
 *
 * Threading: handlers run under the service lock (service.c).
 */
#include "api/api.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define USER_FACES_MAX 100
#define USERS_DEFAULT  500
#define USER_ID_RE     "[a-zA-Z0-9_.\\-:]+"

static enum fl_status user_not_found(struct fl_err *err, const char *coll, const char *user)
{
    return fl_err_set(err, FL_ERR_NOT_FOUND, "The user id: %s does not exist in collection %s",
                      user, coll);
}

static json_t *empty_object(void)
{
    return json_object();
}

FL__API_HANDLER(fl__api_op_create_user)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *user = fl__api_get_str(req, "UserId");
    const char *token = fl__api_get_str(req, "ClientRequestToken");
    struct fl__api_coll *c;
    json_t *o;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    o = empty_object();
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    rc = fl__api_prepare(ctx, o, err);
    if (rc == FL_OK)
        rc = fl_store_user_create(ctx->st, id, user, token, err);
    if (rc == FL_ERR_CONFLICT)
        rc = fl_err_set(err, FL_ERR_CONFLICT, "The user id: %s already exists in collection %s",
                        user, id);
    else if (rc == FL_ERR_IDEMPOTENT_MISMATCH)
        rc = fl_err_set(err, FL_ERR_IDEMPOTENT_MISMATCH,
                        "The ClientRequestToken: %s you have supplied is already in use.", token);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_delete_user)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *user = fl__api_get_str(req, "UserId");
    const char *token = fl__api_get_str(req, "ClientRequestToken");
    struct fl__api_coll *c;
    json_t *o;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    o = empty_object();
    if (!o)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    rc = fl__api_prepare(ctx, o, err);
    if (rc == FL_OK)
        rc = fl_store_user_delete(ctx->st, id, user, token, err);
    if (rc == FL_ERR_NOT_FOUND)
        rc = user_not_found(err, id, user);
    else if (rc == FL_ERR_IDEMPOTENT_MISMATCH)
        rc = fl_err_set(err, FL_ERR_IDEMPOTENT_MISMATCH,
                        "The ClientRequestToken: %s you have supplied is already in use.", token);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_list_users)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *token = fl__api_get_str(req, "NextToken");
    long long max = fl__api_get_int(req, "MaxResults", USERS_DEFAULT);
    struct fl_store_user_page page;
    struct fl__api_coll *c;
    json_t *o, *users;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    if (token && token[0] && fl__api_pattern_match(USER_ID_RE, token) != 1)
        return fl_err_set(err, FL_ERR_PAGINATION, "Invalid Token");
    rc = fl_store_users_list(ctx->st, id, token && token[0] ? token : NULL, (size_t)max,
                             &ctx->arena, &page, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    users = json_array();
    if (!fl__api_set(o, "Users", users))
        goto nomem;
    for (size_t i = 0; i < page.n; i++) {
        json_t *u = json_object();
        if (!fl__api_push(users, u) || !fl__api_set(u, "UserId", json_string(page.v[i].user_id)) ||
            !fl__api_set(u, "UserStatus", json_string(fl_store_user_status_name(page.v[i].status))))
            goto nomem;
    }
    if (page.next && !fl__api_set(o, "NextToken", json_string(page.next)))
        goto nomem;
    *out_resp = o;
    return FL_OK;
nomem:
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

/* Best similarity of vector v against the user's faces (embeddings given). */
static double best_similarity(const struct fl__api_coll *c, const float *v,
                              const struct fl_store_face_list *mine)
{
    double best = 0.0;
    for (size_t i = 0; i < mine->n; i++) {
        const float *w = mine->v[i].embedding;
        double d = 0.0, s;
        if (!w)
            continue;
        if (c->model->metric == FL_INDEX_COSINE) {
            double dot = 0, na = 0, nb = 0;
            for (uint32_t k = 0; k < c->model->dim; k++) {
                dot += (double)v[k] * w[k];
                na += (double)v[k] * v[k];
                nb += (double)w[k] * w[k];
            }
            d = (na > 0 && nb > 0) ? 1.0 - dot / sqrt(na * nb) : 2.0;
        } else if (c->model->metric == FL_INDEX_IP) {
            for (uint32_t k = 0; k < c->model->dim; k++)
                d -= (double)v[k] * w[k];
        } else {
            for (uint32_t k = 0; k < c->model->dim; k++) {
                double t = (double)v[k] - w[k];
                d += t * t;
            }
        }
        s = fl__api_similarity(c->model->model_id, (float)d);
        if (s > best)
            best = s;
    }
    return best;
}

static json_t *outcome_json(const char *face_id, const char *user_id, double confidence,
                            const char *reason)
{
    json_t *u = json_object(), *r = json_array();
    bool ok = u && r && fl__api_set(u, "FaceId", json_string(face_id));
    if (ok && user_id && user_id[0])
        ok = fl__api_set(u, "UserId", json_string(user_id));
    if (ok && confidence >= 0)
        ok = fl__api_set(u, "Confidence", fl__api_real(confidence));
    ok = ok && fl__api_push(r, json_string(reason));
    if (ok) {
        ok = fl__api_set(u, "Reasons", r);
        r = NULL;
    }
    json_decref(r);
    if (!ok) {
        json_decref(u);
        return NULL;
    }
    return u;
}

/* Per-face result of (dis)association as the response reports it. */
enum face_result {
    R_DONE,       /* associated / disassociated now */
    R_ALREADY,    /* already on this user: silently ignored */
    R_NOT_FOUND,  /* FACE_NOT_FOUND */
    R_OTHER_USER, /* ASSOCIATED_TO_A_DIFFERENT_USER (+ UserId when known) */
    R_LOW_MATCH,  /* LOW_MATCH_CONFIDENCE + Confidence */
};

struct face_outcome {
    enum face_result r;
    const char *other_user; /* R_OTHER_USER: the face's user, or NULL */
    double confidence;      /* R_LOW_MATCH */
};

/* The (Dis)AssociateFaces response for outcomes res[0..n) of ids. */
static enum fl_status build_assoc_resp(bool associate, const char *const *ids, size_t n,
                                       const struct face_outcome *res,
                                       enum fl_store_user_status status, json_t **out,
                                       struct fl_err *err)
{
    json_t *o = json_object(), *done, *failed;
    done = json_array();
    if (!fl__api_set(o, associate ? "AssociatedFaces" : "DisassociatedFaces", done))
        goto nomem;
    failed = json_array();
    if (!fl__api_set(o,
                     associate ? "UnsuccessfulFaceAssociations" : "UnsuccessfulFaceDisassociations",
                     failed))
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        json_t *x = NULL;
        switch (res[i].r) {
        case R_DONE:
            x = json_object();
            if (!fl__api_push(done, x) || !fl__api_set(x, "FaceId", json_string(ids[i])))
                goto nomem;
            break;
        case R_ALREADY:
            break;
        case R_NOT_FOUND:
            if (!fl__api_push(failed, outcome_json(ids[i], NULL, -1.0, "FACE_NOT_FOUND")))
                goto nomem;
            break;
        case R_OTHER_USER:
            if (!fl__api_push(failed, outcome_json(ids[i], res[i].other_user, -1.0,
                                                   "ASSOCIATED_TO_A_DIFFERENT_USER")))
                goto nomem;
            break;
        case R_LOW_MATCH:
            if (!fl__api_push(
                    failed, outcome_json(ids[i], NULL, res[i].confidence, "LOW_MATCH_CONFIDENCE")))
                goto nomem;
            break;
        }
    }
    if (!fl__api_set(o, "UserStatus", json_string(fl_store_user_status_name(status))))
        goto nomem;
    *out = o;
    return FL_OK;
nomem:
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

static const struct fl_store_face *find_face(const struct fl_store_face_list *l, const char *id)
{
    for (size_t k = 0; k < l->n; k++)
        if (strcmp(l->v[k].face_id, id) == 0)
            return &l->v[k];
    return NULL;
}

static enum fl_status token_mismatch(struct fl_err *err, const char *token)
{
    return fl_err_set(err, FL_ERR_IDEMPOTENT_MISMATCH,
                      "The ClientRequestToken: %s you have supplied is already in use.", token);
}

FL__API_HANDLER(fl__api_op_associate_faces)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *user = fl__api_get_str(req, "UserId");
    const char *token = fl__api_get_str(req, "ClientRequestToken");
    const json_t *jids = json_object_get(req, "FaceIds");
    double thr = fl__api_get_num(ctx, req, "UserMatchThreshold", 75.0);
    size_t n = json_array_size(jids), n_pass = 0, n_new = 0;
    struct fl_store_user u;
    struct fl_store_face_query q;
    struct fl_store_face_list mine, asked;
    struct fl_store_outcome *outc;
    enum fl_store_user_status status, pred_status;
    struct face_outcome *res;
    struct fl__api_coll *c;
    const char **ids, **pass;
    json_t *o = NULL;
    bool same = true;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_user_get(ctx->st, id, user, &u, err);
    if (rc == FL_ERR_NOT_FOUND)
        return user_not_found(err, id, user);
    if (rc != FL_OK)
        return rc;
    ids = FL_ARENA_NEW(&ctx->arena, const char *, n);
    pass = FL_ARENA_NEW(&ctx->arena, const char *, n);
    res = FL_ARENA_NEW(&ctx->arena, struct face_outcome, n);
    outc = FL_ARENA_NEW(&ctx->arena, struct fl_store_outcome, n);
    if (!ids || !pass || !res || !outc)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = json_string_value(json_array_get(jids, i));
    /* the user's current faces, with embeddings, for the match threshold */
    memset(&q, 0, sizeof(q));
    q.collection = id;
    q.user_id = user;
    q.limit = USER_FACES_MAX + 1;
    q.flags = FL_STORE_WANT_EMBEDDING;
    rc = fl_store_faces_list(ctx->st, &q, &ctx->arena, &mine, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_faces_get(ctx->st, id, ids, n, FL_STORE_WANT_EMBEDDING, &ctx->arena, &asked, err);
    if (rc != FL_OK)
        return rc;
    /* Predict every outcome (exclusive lock: only another process could
     * change them) so the response is built and serialised before the
     * write. */
    for (size_t i = 0; i < n; i++) {
        const struct fl_store_face *f = find_face(&asked, ids[i]);
        bool repeat = false;
        memset(&res[i], 0, sizeof(res[i]));
        for (size_t k = 0; k < i; k++)
            if (strcmp(ids[k], ids[i]) == 0)
                repeat = true;
        if (!f) {
            res[i].r = R_NOT_FOUND;
        } else if (f->user_id && strcmp(f->user_id, user) == 0) {
            res[i].r = R_ALREADY;
        } else if (f->user_id) {
            res[i].r = R_OTHER_USER;
            res[i].other_user = f->user_id;
        } else if (repeat) {
            res[i].r = R_ALREADY;
        } else {
            double s = mine.n > 0 && f->embedding ? best_similarity(c, f->embedding, &mine) : 100;
            if (mine.n > 0 && s < thr) {
                res[i].r = R_LOW_MATCH;
                res[i].confidence = s;
                continue; /* not sent to the store */
            }
            res[i].r = R_DONE;
            n_new++;
        }
        pass[n_pass++] = ids[i];
    }
    if (mine.n + n_new > USER_FACES_MAX)
        return fl_err_set(err, FL_ERR_QUOTA,
                          "The user %s would have more than %d faces (collection %s)", user,
                          USER_FACES_MAX, id);
    pred_status = (mine.n + n_new > 0) ? FL_STORE_USER_ACTIVE : u.status;
    rc = build_assoc_resp(true, ids, n, res, pred_status, &o, err);
    if (rc == FL_OK)
        rc = fl__api_prepare(ctx, o, err);
    if (rc != FL_OK)
        goto out;
    status = u.status;
    if (n_pass > 0) {
        rc = fl_store_faces_associate(ctx->st, id, user, pass, n_pass, USER_FACES_MAX, token, outc,
                                      &status, err);
        if (rc == FL_ERR_QUOTA)
            rc = fl_err_set(err, FL_ERR_QUOTA,
                            "The user %s would have more than %d faces (collection %s)", user,
                            USER_FACES_MAX, id);
        else if (rc == FL_ERR_IDEMPOTENT_MISMATCH)
            rc = token_mismatch(err, token);
        if (rc != FL_OK)
            goto out;
    }
    /* compare with what the store did */
    for (size_t i = 0, p = 0; i < n; i++) {
        if (res[i].r == R_LOW_MATCH)
            continue;
        if ((outc[p].code == FL_STORE_DONE) != (res[i].r == R_DONE || res[i].r == R_ALREADY) ||
            (outc[p].code == FL_STORE_FACE_NOT_FOUND) != (res[i].r == R_NOT_FOUND) ||
            (outc[p].code == FL_STORE_FACE_OTHER_USER) != (res[i].r == R_OTHER_USER))
            same = false;
        p++;
    }
    if (!same || status != pred_status) {
        FL_LOG_W("api: AssociateFaces outcomes in %s changed under us (another writer?)", id);
        for (size_t i = 0, p = 0; i < n; i++) {
            if (res[i].r == R_LOW_MATCH)
                continue;
            if (outc[p].code == FL_STORE_DONE && res[i].r != R_ALREADY)
                res[i].r = R_DONE;
            else if (outc[p].code == FL_STORE_FACE_OTHER_USER)
                res[i].r = R_OTHER_USER; /* other_user stays as read (may be stale) */
            else if (outc[p].code != FL_STORE_DONE)
                res[i].r = R_NOT_FOUND;
            p++;
        }
        json_decref(o);
        o = NULL;
        rc = build_assoc_resp(true, ids, n, res, status, &o, err);
        if (rc == FL_OK)
            rc = fl__api_prepare(ctx, o, err);
        if (rc != FL_OK)
            goto out;
    }
    *out_resp = o;
    return FL_OK;
out:
    json_decref(o);
    return rc;
}

FL__API_HANDLER(fl__api_op_disassociate_faces)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *user = fl__api_get_str(req, "UserId");
    const char *token = fl__api_get_str(req, "ClientRequestToken");
    const json_t *jids = json_object_get(req, "FaceIds");
    size_t n = json_array_size(jids), n_done = 0;
    struct fl_store_outcome *outc;
    enum fl_store_user_status status, pred_status;
    struct fl_store_face_list asked;
    struct face_outcome *res;
    struct fl_store_user u;
    struct fl__api_coll *c;
    const char **ids;
    json_t *o = NULL;
    bool same = true;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_user_get(ctx->st, id, user, &u, err);
    if (rc == FL_ERR_NOT_FOUND)
        return user_not_found(err, id, user);
    if (rc != FL_OK)
        return rc;
    ids = FL_ARENA_NEW(&ctx->arena, const char *, n);
    outc = FL_ARENA_NEW(&ctx->arena, struct fl_store_outcome, n);
    res = FL_ARENA_NEW(&ctx->arena, struct face_outcome, n);
    if (!ids || !outc || !res)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        ids[i] = json_string_value(json_array_get(jids, i));
    rc = fl_store_faces_get(ctx->st, id, ids, n, 0, &ctx->arena, &asked, err);
    if (rc != FL_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        const struct fl_store_face *f = find_face(&asked, ids[i]);
        bool repeat = false;
        memset(&res[i], 0, sizeof(res[i]));
        for (size_t k = 0; k < i; k++)
            if (strcmp(ids[k], ids[i]) == 0)
                repeat = true;
        if (!f) {
            res[i].r = R_NOT_FOUND;
        } else if (f->user_id && strcmp(f->user_id, user) == 0 && !repeat) {
            res[i].r = R_DONE;
            n_done++;
        } else {
            /* another user's face, a face without a user, or a repeat */
            res[i].r = R_OTHER_USER;
            res[i].other_user = (f->user_id && strcmp(f->user_id, user) != 0) ? f->user_id : NULL;
        }
    }
    pred_status = (u.face_count > n_done) ? FL_STORE_USER_ACTIVE
                  : (u.face_count > 0)    ? FL_STORE_USER_CREATED
                                          : u.status;
    rc = build_assoc_resp(false, ids, n, res, pred_status, &o, err);
    if (rc == FL_OK)
        rc = fl__api_prepare(ctx, o, err);
    if (rc != FL_OK)
        goto out;
    rc = fl_store_faces_disassociate(ctx->st, id, user, ids, n, token, outc, &status, err);
    if (rc == FL_ERR_NOT_FOUND)
        rc = user_not_found(err, id, user);
    else if (rc == FL_ERR_IDEMPOTENT_MISMATCH)
        rc = token_mismatch(err, token);
    if (rc != FL_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if ((outc[i].code == FL_STORE_DONE) != (res[i].r == R_DONE) ||
            (outc[i].code == FL_STORE_FACE_NOT_FOUND) != (res[i].r == R_NOT_FOUND))
            same = false;
    if (!same || status != pred_status) {
        FL_LOG_W("api: DisassociateFaces outcomes in %s changed under us (another writer?)", id);
        for (size_t i = 0; i < n; i++) {
            res[i].r = outc[i].code == FL_STORE_DONE             ? R_DONE
                       : outc[i].code == FL_STORE_FACE_NOT_FOUND ? R_NOT_FOUND
                                                                 : R_OTHER_USER;
            res[i].other_user = outc[i].user_id[0] ? outc[i].user_id : NULL;
        }
        json_decref(o);
        o = NULL;
        rc = build_assoc_resp(false, ids, n, res, status, &o, err);
        if (rc == FL_OK)
            rc = fl__api_prepare(ctx, o, err);
        if (rc != FL_OK)
            goto out;
    }
    *out_resp = o;
    return FL_OK;
out:
    json_decref(o);
    return rc;
}
