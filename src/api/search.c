/*
 * search.c: SearchFaces (by FaceId) and SearchUsers (by UserId or FaceId).
 *
 * SearchFaces: the stored vector of the face is the query; the index returns
 * the k nearest faces of the collection (k = MaxFaces, default 4096, the
 * documented result cap), the face itself excluded (REKOGNITION.md §4.2);
 * each distance becomes a Similarity through fl__api_similarity() and only
 * matches with Similarity >= FaceMatchThreshold (default 80) are returned,
 * best first. Filtering after the k-nearest query is exact because
 * similarity is non-increasing in distance.
 *
 * SearchUsers: exactly one of UserId and FaceId (InvalidParameterException
 * otherwise). The query vectors are the face, or every face of the user.
 * For each query vector the nearest faces are searched (k = 4096) and every
 * hit that belongs to a user votes for it; a user's Similarity is the best
 * similarity of any of its faces to any query vector. With UserId the user
 * itself is not returned; with FaceId the face itself is excluded but its
 * user may match through its other faces. Results: Similarity >=
 * UserMatchThreshold (default 80), best first, at most MaxUsers (default
 * 500). The UserStatus of matched users comes from the store.
 *
 * Threading: handlers run under the shared service lock; the index's own
 * read lock lets searches run concurrently.
 */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FACES_DEFAULT 4096
#define MAX_USERS_DEFAULT 500

static enum fl_status face_not_found(struct fl_err *err, const char *coll, const char *face)
{
    return fl_err_set(err, FL_ERR_NOT_FOUND, "The face id: %s does not exist in collection %s",
                      face, coll);
}

/* Search the k nearest to vec within index distance max_d, excluding
 * `exclude` (or not), into arena hits. */
static enum fl_status knn(struct fl__api_ctx *ctx, struct fl__api_coll *c, const float *vec,
                          size_t k, float max_d, const uint64_t *exclude,
                          struct fl_index_hit **out_hits, size_t *out_n, struct fl_err *err)
{
    struct fl_index_hit *hits = NULL;
    if (k > FL_INDEX_K_MAX)
        k = FL_INDEX_K_MAX;
    if (k == 0)
        k = 1;
    hits = FL_ARENA_NEW(&ctx->arena, struct fl_index_hit, k);
    if (!hits)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    *out_hits = hits;
    return fl_index_search(c->ix, vec, k, max_d, exclude, hits, out_n, err);
}

/* Nearest faces to vec with Similarity >= thr, best first, at most max,
 * the face whose key is *exclude left out: their FaceIds (borrowed from the
 * collection's key map) and similarities, in the arena. */
static enum fl_status matches_above(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    const float *vec, size_t max, const uint64_t *exclude,
                                    double thr, const char ***out_ids, double **out_sims,
                                    size_t *out_n, struct fl_err *err)
{
    struct fl_index_hit *hits = NULL;
    size_t n_hits = 0, n_keep = 0;
    const char **ids;
    double *sims;
    enum fl_status rc =
        knn(ctx, c, vec, max, fl__api_distance_bound(c->model, thr), exclude, &hits, &n_hits, err);
    if (rc != FL_OK)
        return rc;
    ids = FL_ARENA_NEW(&ctx->arena, const char *, n_hits ? n_hits : 1);
    sims = FL_ARENA_NEW(&ctx->arena, double, n_hits ? n_hits : 1);
    if (!ids || !sims)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_hits; i++) {
        double s = fl__api_similarity(c->model->model_id, hits[i].distance);
        const char *fid = fl__api_keymap_get(&c->keys, (int64_t)hits[i].id);
        if (s < thr)
            break; /* hits are best first and similarity is monotone */
        if (!fid)
            return fl_err_set(err, FL_ERR_INTERNAL, "index id %llu has no FaceId",
                              (unsigned long long)hits[i].id);
        ids[n_keep] = fid;
        sims[n_keep] = s;
        n_keep++;
    }
    *out_ids = ids;
    *out_sims = sims;
    *out_n = n_keep;
    return FL_OK;
}

enum fl_status fl__api_face_matches(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    const float *vec, size_t max, const uint64_t *exclude,
                                    double thr, json_t *matches, struct fl_err *err)
{
    struct fl_store_face_list found;
    const char **ids;
    double *sims;
    size_t n_keep = 0;
    enum fl_status rc = matches_above(ctx, c, vec, max, exclude, thr, &ids, &sims, &n_keep, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_faces_get(ctx->st, c->id, ids, n_keep, 0, &ctx->arena, &found, err);
    if (rc != FL_OK)
        return rc;
    for (size_t i = 0, j = 0; i < n_keep; i++) {
        json_t *m;
        /* faces_get keeps the asked order and leaves out missing ids */
        if (j >= found.n || strcmp(found.v[j].face_id, ids[i]) != 0)
            continue;
        m = json_object();
        if (!fl__api_push(matches, m) || !fl__api_set(m, "Similarity", fl__api_real(sims[i])) ||
            !fl__api_set(m, "Face", fl__api_face_json(&found.v[j])))
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        j++;
    }
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_search_faces)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *face_id = fl__api_get_str(req, "FaceId");
    long long max = fl__api_get_int(req, "MaxFaces", MAX_FACES_DEFAULT);
    double thr = fl__api_get_num(ctx, req, "FaceMatchThreshold", 80.0);
    struct fl_store_face self;
    struct fl__api_coll *c;
    uint64_t self_key;
    json_t *o = NULL, *matches;
    enum fl_status rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    rc = fl_store_face_get(ctx->st, id, face_id, FL_STORE_WANT_EMBEDDING, &ctx->arena, &self, err);
    if (rc == FL_ERR_NOT_FOUND)
        return face_not_found(err, id, face_id);
    if (rc != FL_OK)
        return rc;
    if (!self.embedding || self.dim != c->model->dim)
        return fl_err_set(err, FL_ERR_CORRUPT, "face %s has no usable embedding", face_id);
    self_key = (uint64_t)self.key;
    o = json_object();
    if (!fl__api_set(o, "SearchedFaceId", json_string(face_id)))
        goto nomem;
    matches = json_array();
    if (!fl__api_set(o, "FaceMatches", matches)) /* owned by o from here */
        goto nomem;
    rc = fl__api_face_matches(ctx, c, self.embedding, (size_t)max, &self_key, thr, matches, err);
    if (rc != FL_OK)
        goto out;
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        goto nomem;
    *out_resp = o;
    return FL_OK;
nomem:
    rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
out:
    json_decref(o);
    return rc;
}

struct user_score {
    const char *user_id; /* in the arena */
    double sim;
};

static int cmp_user_score(const void *a, const void *b)
{
    const struct user_score *x = a, *y = b;
    if (x->sim != y->sim)
        return x->sim > y->sim ? -1 : 1;
    return strcmp(x->user_id, y->user_id);
}

enum fl_status fl__api_user_matches(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                    const float *const *vecs, const uint64_t *self_keys, size_t n,
                                    const char *exclude_user, double thr, size_t max_users,
                                    json_t *matches, struct fl_err *err)
{
    struct fl_store_face_list hitfaces;
    struct user_score *scores = NULL;
    size_t n_scores = 0, cap_scores = 0;
    enum fl_status rc;

    for (size_t qi = 0; qi < n; qi++) {
        const char **ids;
        double *sims;
        size_t n_keep = 0;
        if (!vecs[qi])
            continue;
        rc = matches_above(ctx, c, vecs[qi], FL_INDEX_K_MAX, self_keys ? &self_keys[qi] : NULL,
                           thr, &ids, &sims, &n_keep, err);
        if (rc != FL_OK)
            return rc;
        rc = fl_store_faces_get(ctx->st, c->id, ids, n_keep, 0, &ctx->arena, &hitfaces, err);
        if (rc != FL_OK)
            return rc;
        for (size_t i = 0, j = 0; i < n_keep && j < hitfaces.n; i++) {
            const struct fl_store_face *f;
            size_t k;
            if (strcmp(hitfaces.v[j].face_id, ids[i]) != 0)
                continue;
            f = &hitfaces.v[j++];
            if (!f->user_id || (exclude_user && strcmp(f->user_id, exclude_user) == 0))
                continue;
            for (k = 0; k < n_scores; k++)
                if (strcmp(scores[k].user_id, f->user_id) == 0)
                    break;
            if (k < n_scores) {
                if (sims[i] > scores[k].sim)
                    scores[k].sim = sims[i];
                continue;
            }
            if (n_scores == cap_scores) {
                size_t nc = cap_scores ? cap_scores * 2 : 64;
                struct user_score *ns = FL_ARENA_NEW(&ctx->arena, struct user_score, nc);
                if (!ns)
                    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
                if (n_scores)
                    memcpy(ns, scores, n_scores * sizeof(*ns));
                scores = ns;
                cap_scores = nc;
            }
            scores[n_scores].user_id = f->user_id;
            scores[n_scores].sim = sims[i];
            n_scores++;
        }
    }
    if (n_scores > 1)
        qsort(scores, n_scores, sizeof(*scores), cmp_user_score);
    if (n_scores > max_users)
        n_scores = max_users;
    for (size_t i = 0; i < n_scores; i++) {
        struct fl_store_user mu;
        json_t *m, *mu_j;
        rc = fl_store_user_get(ctx->st, c->id, scores[i].user_id, &mu, err);
        if (rc != FL_OK)
            return rc;
        m = json_object();
        if (!fl__api_push(matches, m) || !fl__api_set(m, "Similarity", fl__api_real(scores[i].sim)))
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        mu_j = json_object();
        if (!fl__api_set(m, "User", mu_j) ||
            !fl__api_set(mu_j, "UserId", json_string(scores[i].user_id)) ||
            !fl__api_set(mu_j, "UserStatus", json_string(fl_store_user_status_name(mu.status))))
            return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_search_users)
{
    const char *id = fl__api_get_str(req, "CollectionId");
    const char *user = fl__api_get_str(req, "UserId");
    const char *face_id = fl__api_get_str(req, "FaceId");
    long long max_users = fl__api_get_int(req, "MaxUsers", MAX_USERS_DEFAULT);
    double thr = fl__api_get_num(ctx, req, "UserMatchThreshold", 80.0);
    struct fl_store_face_list queries;
    struct fl__api_coll *c;
    const float **vecs;
    uint64_t *keys;
    json_t *o = NULL, *matches, *searched;
    enum fl_status rc;

    if ((user != NULL) == (face_id != NULL))
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: exactly one of UserId and FaceId "
                          "must be given");
    rc = fl__api_coll_require(ctx->svc, id, &c, err);
    if (rc != FL_OK)
        return rc;
    if (face_id) {
        rc = fl_store_faces_get(ctx->st, id, &face_id, 1, FL_STORE_WANT_EMBEDDING, &ctx->arena,
                                &queries, err);
        if (rc != FL_OK)
            return rc;
        if (queries.n == 0)
            return face_not_found(err, id, face_id);
    } else {
        struct fl_store_user u;
        struct fl_store_face_query q;
        rc = fl_store_user_get(ctx->st, id, user, &u, err);
        if (rc == FL_ERR_NOT_FOUND)
            return fl_err_set(err, FL_ERR_NOT_FOUND,
                              "The user id: %s does not exist in collection %s", user, id);
        if (rc != FL_OK)
            return rc;
        memset(&q, 0, sizeof(q));
        q.collection = id;
        q.user_id = user;
        q.limit = 1000;
        q.flags = FL_STORE_WANT_EMBEDDING;
        rc = fl_store_faces_list(ctx->st, &q, &ctx->arena, &queries, err);
        if (rc != FL_OK)
            return rc;
    }
    vecs = FL_ARENA_NEW(&ctx->arena, const float *, queries.n ? queries.n : 1);
    keys = FL_ARENA_NEW(&ctx->arena, uint64_t, queries.n ? queries.n : 1);
    if (!vecs || !keys)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < queries.n; i++) {
        vecs[i] = queries.v[i].embedding;
        keys[i] = (uint64_t)queries.v[i].key;
    }
    o = json_object();
    matches = json_array();
    if (!fl__api_set(o, "UserMatches", matches))
        goto nomem;
    rc = fl__api_user_matches(ctx, c, vecs, keys, queries.n, user, thr, (size_t)max_users,
                              matches, err);
    if (rc != FL_OK)
        goto out;
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        goto nomem;
    searched = json_object();
    if (face_id) {
        if (!fl__api_set(o, "SearchedFace", searched) ||
            !fl__api_set(searched, "FaceId", json_string(face_id)))
            goto nomem;
    } else {
        if (!fl__api_set(o, "SearchedUser", searched) ||
            !fl__api_set(searched, "UserId", json_string(user)))
            goto nomem;
    }
    *out_resp = o;
    return FL_OK;
nomem:
    rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
out:
    json_decref(o);
    return rc;
}
