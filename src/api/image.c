/*
 * image.c: the operations that look at images: DetectFaces, CompareFaces,
 * IndexFaces, SearchFacesByImage and SearchUsersByImage.
 *
 * Each runs in two steps (service.c):
 *   1. prepare, WITHOUT the service lock: decode Image.Bytes (limits and
 *      errors in img/), detect faces, compute attributes, apply the quality
 *      filter, and embed the faces the operation needs, on a borrowed face
 *      worker. The result is an fl__api_image_job in ctx->job.
 *   2. the handler, under the lock: look up, write and answer, using only
 *      the job. A collection deleted (or recreated with another model)
 *      between the two steps is caught by re-checking it in step 2.
 * So inference (tens of milliseconds) never holds up other calls.
 *
 * What Rekognition returns that we compute, and how (docs/internals/api.md):
 *   BoundingBox, Confidence  MTCNN, ratios of the oriented image
 *   Landmarks                all 30 types from the 68 points (face/geom.c)
 *   Pose, Quality            from landmarks; brightness and sharpness (face/)
 *   AgeRange, Gender         face-api age_gender (range = estimate +- 5 years)
 *   Emotions, Smile          face-api expression (7 classes; CONFUSED absent)
 *   EyesOpen, MouthOpen      landmark ratios (eye aspect ratio, lip gap)
 *   Beard, Mustache, Eyeglasses, Sunglasses, FaceOccluded, EyeDirection:
 *                            no model estimates them; never returned.
 *
 * Quality filter (Rekognition publishes no numbers; ours, documented in
 * docs/internals/api.md): a face fails a bar for each measure below it;
 * AUTO is LOW.
 *
 * Threading: prepare steps may run concurrently (one face worker each);
 * handlers run under the service lock as every handler does.
 */
#include "api/api.h"

#include "img/img.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_FACES_DETECTED 100
/* Namespace of ImageIds: uuid5(ns, image bytes), so the same image always
 * gets the same ImageId. A fixed random UUID of ours. */
#define IMAGE_ID_NAMESPACE "3f8f6d0e-6d2a-4c1b-9a53-5b0e4f3c2a71"

/* ============================== The job ============================== */

enum attr_bits {
    ATTR_AGE = 1u << 0,
    ATTR_GENDER = 1u << 1,
    ATTR_EMOTIONS = 1u << 2,
    ATTR_SMILE = 1u << 3,
    ATTR_EYES = 1u << 4,
    ATTR_MOUTH = 1u << 5,
};

enum reason_bits {
    R_EXCEEDS_MAX_FACES = 1u << 0,
    R_EXTREME_POSE = 1u << 1,
    R_LOW_BRIGHTNESS = 1u << 2,
    R_LOW_SHARPNESS = 1u << 3,
    R_LOW_CONFIDENCE = 1u << 4,
    R_SMALL_BOUNDING_BOX = 1u << 5,
};
static const char *const reason_names[] = {"EXCEEDS_MAX_FACES", "EXTREME_POSE",
                                           "LOW_BRIGHTNESS",    "LOW_SHARPNESS",
                                           "LOW_CONFIDENCE",    "SMALL_BOUNDING_BOX"};

struct job_face {
    struct fl_face f;
    unsigned reasons;            /* reason_bits; 0 = passes */
    bool want;                   /* to be embedded by embed_wanted() */
    bool embedded;
    float emb[FL_FACE_MAX_DIM];
    uint8_t *crop; /* retained for re-indexing (IndexFaces; crop.c), or NULL */
    size_t crop_len;
};

struct job_image {
    struct fl_image img;
    char image_id[FL_UUID_STR_LEN + 1];
    struct job_face *faces; /* largest first */
    int n;
};

struct fl__api_image_job {
    unsigned attrs;                     /* attr_bits asked for */
    const struct fl__api_model *model;  /* collection's model (or the default) */
    struct job_image a, b;              /* b: CompareFaces' target */
};

void fl__api_image_job_free(struct fl__api_image_job *job)
{
    if (!job)
        return;
    for (int i = 0; job->a.faces && i < job->a.n; i++)
        fl_free(job->a.faces[i].crop);
    fl_image_free(&job->a.img);
    fl_image_free(&job->b.img);
    fl_free(job->a.faces);
    fl_free(job->b.faces);
    fl_free(job);
}

static enum fl_status job_new(struct fl__api_ctx *ctx, struct fl_err *err)
{
    ctx->job = fl_calloc(1, sizeof(*ctx->job));
    if (!ctx->job)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    return FL_OK;
}

/* ============================== Requests ============================== */

/* DetectionAttributes / Attributes: DEFAULT adds nothing; ALL everything we
 * can estimate; named ones their part. ["ALL","DEFAULT"] is ALL. */
static unsigned parse_attrs(const json_t *list)
{
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {{"ALL", ATTR_AGE | ATTR_GENDER | ATTR_EMOTIONS | ATTR_SMILE | ATTR_EYES | ATTR_MOUTH},
                 {"AGE_RANGE", ATTR_AGE},
                 {"GENDER", ATTR_GENDER},
                 {"EMOTIONS", ATTR_EMOTIONS},
                 {"SMILE", ATTR_SMILE},
                 {"EYES_OPEN", ATTR_EYES},
                 {"MOUTH_OPEN", ATTR_MOUTH}};
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *s = json_string_value(v);
        for (size_t k = 0; s && k < FL_ARRAY_LEN(names); k++)
            if (strcmp(s, names[k].name) == 0)
                bits |= names[k].bits;
    }
    return bits;
}

static unsigned engine_attrs(unsigned attrs)
{
    unsigned e = 0;
    if (attrs & (ATTR_AGE | ATTR_GENDER))
        e |= FL_FACE_ATTR_AGE_GENDER;
    if (attrs & (ATTR_EMOTIONS | ATTR_SMILE))
        e |= FL_FACE_ATTR_EXPRESSION;
    return e;
}

/* The quality bars. A face fails a bar for each measure on the wrong side. */
struct quality_bar {
    float confidence; /* detector confidence, 0..100 */
    float side_px;    /* shorter side of the box, pixels */
    float yaw, pitch; /* |degrees| */
    float brightness; /* 0..100 */
    float sharpness;  /* 0..100 */
};
/* clang-format off */
static const struct quality_bar bars[] = {
    /* LOW (and AUTO) */ {70.0f, 20.0f, 75.0f, 60.0f, 5.0f, 5.0f},
    /* MEDIUM */         {90.0f, 32.0f, 55.0f, 45.0f, 15.0f, 15.0f},
    /* HIGH */           {97.0f, 48.0f, 40.0f, 30.0f, 25.0f, 30.0f},
};
/* clang-format on */

/* The bar a QualityFilter value names, or NULL for NONE (or absent with
 * def_none). */
static const struct quality_bar *quality_bar(const json_t *req, bool def_none)
{
    const char *q = json_string_value(json_object_get(req, "QualityFilter"));
    if (!q)
        return def_none ? NULL : &bars[0];
    if (strcmp(q, "NONE") == 0)
        return NULL;
    if (strcmp(q, "MEDIUM") == 0)
        return &bars[1];
    if (strcmp(q, "HIGH") == 0)
        return &bars[2];
    return &bars[0]; /* LOW, AUTO */
}

static unsigned quality_reasons(const struct fl_face *f, const struct quality_bar *q)
{
    unsigned r = 0;
    if (!q)
        return 0;
    if (f->confidence < q->confidence)
        r |= R_LOW_CONFIDENCE;
    if (fminf(f->box.w, f->box.h) < q->side_px)
        r |= R_SMALL_BOUNDING_BOX;
    if (fabsf(f->yaw) > q->yaw || fabsf(f->pitch) > q->pitch)
        r |= R_EXTREME_POSE;
    if (f->brightness < q->brightness)
        r |= R_LOW_BRIGHTNESS;
    if (f->sharpness < q->sharpness)
        r |= R_LOW_SHARPNESS;
    return r;
}

/* Decode member `name` ({"Bytes": base64}; the validator has checked the
 * shape, the base64 and the 5 MB limit) into im, with its ImageId. */
static enum fl_status decode_image(const json_t *req, const char *name, struct job_image *im,
                                   struct fl_err *err)
{
    const char *b64 = json_string_value(json_object_get(json_object_get(req, name), "Bytes"));
    size_t len = b64 ? strlen(b64) : 0, n = 0;
    uint8_t *bytes = NULL;
    struct fl_img_decode_opts o;
    enum fl_status rc;

    if (!b64)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "%s.Bytes is required", name);
    bytes = fl_malloc(fl_base64_decoded_max(len) + 1);
    if (!bytes)
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory decoding %s", name);
    rc = fl_base64_decode(b64, len, bytes, &n, err);
    if (rc != FL_OK) {
        rc = fl_err_set(err, FL_ERR_IMAGE_FORMAT, "Request has invalid image format (%s)", name);
        goto out;
    }
    fl_img_decode_opts_default(&o);
    rc = fl_img_decode(bytes, n, &o, &im->img, NULL, err);
    if (rc != FL_OK) {
        /* add which image, as CompareFaces has two */
        char msg[FL_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s: %.200s", name, err ? err->msg : "");
        if (rc == FL_ERR_IMAGE_FORMAT)
            rc = fl_err_set(err, rc, "Request has invalid image format. %s", msg);
        else
            rc = fl_err_set(err, rc, "%s", msg);
        goto out;
    }
    rc = fl_uuid_v5(IMAGE_ID_NAMESPACE, bytes, n, im->image_id, err);
out:
    fl_free(bytes);
    return rc;
}

/* Detect faces of im (largest first, at most MAX_FACES_DETECTED) with
 * engine attributes eattrs. */
static enum fl_status detect(struct fl_face_worker *w, struct job_image *im, unsigned eattrs,
                             struct fl_err *err)
{
    struct fl_face *faces = NULL;
    int n = 0;
    enum fl_status rc = fl_face_detect(w, &im->img, eattrs, MAX_FACES_DETECTED, &faces, &n, err);
    if (rc != FL_OK)
        return rc;
    im->faces = fl_calloc((size_t)(n ? n : 1), sizeof(*im->faces));
    if (!im->faces) {
        fl_free(faces);
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        im->faces[i].f = faces[i];
    im->n = n;
    fl_free(faces);
    return FL_OK;
}

/* Embed every face of im marked `want`, all in one call so their chips run
 * in batches (face/embed.c). */
static enum fl_status embed_wanted(struct fl_face_worker *w, const struct fl__api_model *m,
                                   struct job_image *im, struct fl_err *err)
{
    const struct fl_face **faces = fl_malloc(sizeof(*faces) * (size_t)(im->n ? im->n : 1));
    float *out = fl_malloc(sizeof(float) * (size_t)(im->n ? im->n : 1) * m->dim);
    int n = 0, k = 0;
    enum fl_status rc = FL_OK;
    if (!faces || !out) {
        rc = fl_err_set(err, FL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < im->n; i++)
        if (im->faces[i].want)
            faces[n++] = &im->faces[i].f;
    if (n > 0)
        rc = fl_face_embed_faces(w, &im->img, faces, n, m->face_model, out, err);
    for (int i = 0; rc == FL_OK && i < im->n; i++) {
        struct job_face *jf = &im->faces[i];
        if (!jf->want)
            continue;
        memcpy(jf->emb, out + (size_t)k++ * m->dim, sizeof(float) * m->dim);
        jf->embedded = true;
    }
out:
    fl_free(faces);
    fl_free(out);
    return rc;
}

/* The collection's model, read under the shared lock (NOT_FOUND if absent). */
static enum fl_status collection_model(struct fl__api_ctx *ctx, const json_t *req,
                                       const struct fl__api_model **out, struct fl_err *err)
{
    struct fl__api_coll *c;
    enum fl_status rc;
    pthread_rwlock_rdlock(&ctx->svc->lock);
    rc = fl__api_coll_require(ctx->svc, fl__api_get_str(req, "CollectionId"), &c, err);
    if (rc == FL_OK)
        *out = c->model;
    pthread_rwlock_unlock(&ctx->svc->lock);
    return rc;
}

/* ============================== Prepare steps ============================== */

enum fl_status fl__api_prep_detect_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err)
{
    struct fl_face_worker *w = NULL;
    enum fl_status rc = job_new(ctx, err);
    if (rc != FL_OK)
        return rc;
    ctx->job->attrs = parse_attrs(json_object_get(req, "Attributes"));
    rc = decode_image(req, "Image", &ctx->job->a, err);
    if (rc != FL_OK)
        return rc;
    w = fl__api_face_take(ctx->svc, err);
    if (!w)
        return err ? err->code : FL_ERR_INTERNAL;
    rc = detect(w, &ctx->job->a, engine_attrs(ctx->job->attrs), err);
    fl__api_face_give(ctx->svc, w);
    return rc;
}

enum fl_status fl__api_prep_compare_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err)
{
    struct fl__api_image_job *job;
    struct fl_face_worker *w = NULL;
    enum fl_status rc = job_new(ctx, err);
    if (rc != FL_OK)
        return rc;
    job = ctx->job;
    job->model = fl__api_model_default();
    rc = decode_image(req, "SourceImage", &job->a, err);
    if (rc == FL_OK)
        rc = decode_image(req, "TargetImage", &job->b, err);
    if (rc != FL_OK)
        return rc;
    w = fl__api_face_take(ctx->svc, err);
    if (!w)
        return err ? err->code : FL_ERR_INTERNAL;
    rc = detect(w, &job->a, 0, err);
    if (rc == FL_OK)
        rc = detect(w, &job->b, 0, err);
    if (rc == FL_OK && (job->a.n == 0 || job->b.n == 0))
        rc = fl_err_set(err, FL_ERR_INVALID_ARG,
                        "Request has invalid parameters: there are no faces in the %s image",
                        job->a.n == 0 ? "source" : "target");
    if (rc == FL_OK) {
        job->a.faces[0].want = true;
        for (int i = 0; i < job->b.n; i++)
            job->b.faces[i].want = true;
        rc = embed_wanted(w, job->model, &job->a, err);
    }
    if (rc == FL_OK)
        rc = embed_wanted(w, job->model, &job->b, err);
    fl__api_face_give(ctx->svc, w);
    return rc;
}

enum fl_status fl__api_prep_index_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err)
{
    struct fl__api_image_job *job;
    struct fl_face_worker *w = NULL;
    const struct quality_bar *bar = quality_bar(req, false);
    long long max_faces = fl__api_get_int(req, "MaxFaces", MAX_FACES_DETECTED);
    int n_pass = 0;
    enum fl_status rc = job_new(ctx, err);
    if (rc != FL_OK)
        return rc;
    job = ctx->job;
    job->attrs = parse_attrs(json_object_get(req, "DetectionAttributes"));
    rc = collection_model(ctx, req, &job->model, err);
    if (rc == FL_OK)
        rc = decode_image(req, "Image", &job->a, err);
    if (rc != FL_OK)
        return rc;
    w = fl__api_face_take(ctx->svc, err);
    if (!w)
        return err ? err->code : FL_ERR_INTERNAL;
    rc = detect(w, &job->a, engine_attrs(job->attrs), err);
    /* quality first, then MaxFaces over the faces that pass, largest kept */
    for (int i = 0; rc == FL_OK && i < job->a.n; i++) {
        struct job_face *jf = &job->a.faces[i];
        jf->reasons = quality_reasons(&jf->f, bar);
        if (jf->reasons)
            continue;
        if (n_pass >= max_faces) {
            jf->reasons = R_EXCEEDS_MAX_FACES;
            continue;
        }
        n_pass++;
        jf->want = true;
    }
    if (rc == FL_OK)
        rc = embed_wanted(w, job->model, &job->a, err);
    for (int i = 0; rc == FL_OK && i < job->a.n; i++) {
        struct job_face *jf = &job->a.faces[i];
        if (jf->want && ctx->svc->crop_mode != FL__API_CROP_NONE)
            rc = fl__api_crop_make(ctx->svc->crop_mode, &job->a.img, &jf->f, &jf->crop,
                                   &jf->crop_len, err);
    }
    fl__api_face_give(ctx->svc, w);
    return rc;
}

/* SearchFacesByImage and SearchUsersByImage: the largest face that passes
 * the filter (default NONE) is searched; SearchAllFacesByImage (all): every
 * face that passes it. */
static enum fl_status prep_search(struct fl__api_ctx *ctx, json_t *req, bool all,
                                  struct fl_err *err)
{
    struct fl__api_image_job *job;
    struct fl_face_worker *w = NULL;
    const struct quality_bar *bar = quality_bar(req, true);
    bool searched = false;
    enum fl_status rc = job_new(ctx, err);
    if (rc != FL_OK)
        return rc;
    job = ctx->job;
    rc = collection_model(ctx, req, &job->model, err);
    if (rc == FL_OK)
        rc = decode_image(req, "Image", &job->a, err);
    if (rc != FL_OK)
        return rc;
    w = fl__api_face_take(ctx->svc, err);
    if (!w)
        return err ? err->code : FL_ERR_INTERNAL;
    rc = detect(w, &job->a, 0, err);
    for (int i = 0; rc == FL_OK && i < job->a.n; i++) {
        struct job_face *jf = &job->a.faces[i];
        jf->reasons = quality_reasons(&jf->f, bar);
        if (jf->reasons || (searched && !all))
            continue;
        jf->want = searched = true;
    }
    if (rc == FL_OK)
        rc = embed_wanted(w, job->model, &job->a, err);
    fl__api_face_give(ctx->svc, w);
    return rc;
}

enum fl_status fl__api_prep_search_by_image(struct fl__api_ctx *ctx, json_t *req,
                                            struct fl_err *err)
{
    return prep_search(ctx, req, false, err);
}

enum fl_status fl__api_prep_search_all_by_image(struct fl__api_ctx *ctx, json_t *req,
                                                struct fl_err *err)
{
    return prep_search(ctx, req, true, err);
}

/* ============================== JSON ============================== */

static json_t *bbox_json(const struct fl_image *img, const struct fl_face_box *b)
{
    json_t *o = json_object();
    if (o && fl__api_set(o, "Width", fl__api_real(b->w / img->w)) &&
        fl__api_set(o, "Height", fl__api_real(b->h / img->h)) &&
        fl__api_set(o, "Left", fl__api_real(b->x / img->w)) &&
        fl__api_set(o, "Top", fl__api_real(b->y / img->h)))
        return o;
    json_decref(o);
    return NULL;
}

static json_t *value_conf(bool value, float conf)
{
    json_t *o = json_object();
    if (o && fl__api_set(o, "Value", json_boolean(value)) &&
        fl__api_set(o, "Confidence", fl__api_real(conf)))
        return o;
    json_decref(o);
    return NULL;
}

/* Confidence of a thresholded estimate: 50 at the threshold, 100 at
 * `span` or more away from it. */
static float threshold_confidence(float v, float thr, float span)
{
    return fminf(100.0f, 50.0f + 50.0f * fabsf(v - thr) / span);
}

static json_t *landmarks_json(const struct fl_image *img, const struct fl_face *f)
{
    json_t *a = json_array();
    for (int i = 0; a && i < fl_face_n_landmark_defs; i++) {
        float x, y;
        json_t *l = json_object();
        fl_face_landmark_point(f->lm68, i, &x, &y);
        if (!fl__api_push(a, l) ||
            !fl__api_set(l, "Type", json_string(fl_face_landmark_defs[i].type)) ||
            !fl__api_set(l, "X", fl__api_real(x / img->w)) ||
            !fl__api_set(l, "Y", fl__api_real(y / img->h))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *pose_json(const struct fl_face *f)
{
    json_t *o = json_object();
    if (o && fl__api_set(o, "Roll", fl__api_real(f->roll)) &&
        fl__api_set(o, "Yaw", fl__api_real(f->yaw)) &&
        fl__api_set(o, "Pitch", fl__api_real(f->pitch)))
        return o;
    json_decref(o);
    return NULL;
}

static json_t *quality_json(const struct fl_face *f)
{
    json_t *o = json_object();
    if (o && fl__api_set(o, "Brightness", fl__api_real(f->brightness)) &&
        fl__api_set(o, "Sharpness", fl__api_real(f->sharpness)))
        return o;
    json_decref(o);
    return NULL;
}

/* face-api expression order -> Rekognition EmotionName */
static const char *const emotion_names[FL_FACE_N_EXPRESSIONS] = {
    "CALM", "HAPPY", "SAD", "ANGRY", "FEAR", "DISGUSTED", "SURPRISED"};

static json_t *emotions_json(const struct fl_face *f)
{
    int order[FL_FACE_N_EXPRESSIONS];
    json_t *a = json_array();
    for (int i = 0; i < FL_FACE_N_EXPRESSIONS; i++)
        order[i] = i;
    for (int i = 1; i < FL_FACE_N_EXPRESSIONS; i++) /* by confidence, descending */
        for (int j = i; j > 0 && f->expression[order[j]] > f->expression[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; a && i < FL_FACE_N_EXPRESSIONS; i++) {
        json_t *e = json_object();
        if (!fl__api_push(a, e) || !fl__api_set(e, "Type", json_string(emotion_names[order[i]])) ||
            !fl__api_set(e, "Confidence", fl__api_real(100.0f * f->expression[order[i]]))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Thresholds of the landmark-based estimates (docs/internals/api.md). */
#define EYES_OPEN_EAR 0.2f    /* eye aspect ratio above it: open */
#define MOUTH_OPEN_RATIO 0.1f /* inner-lip gap / mouth width above it: open */

/* A FaceDetail (Rekognition's member order) with the attributes in attrs;
 * `compared` gives ComparedFace's subset (no age, gender, eyes, mouth). */
static json_t *face_detail_json(const struct fl_image *img, const struct fl_face *f, unsigned attrs,
                                bool compared)
{
    json_t *o = json_object();
    bool ok = o && fl__api_set(o, "BoundingBox", bbox_json(img, &f->box));
    if (compared)
        attrs &= ATTR_EMOTIONS | ATTR_SMILE;
    if (ok && !compared)
        ok = fl__api_set(o, "Confidence", fl__api_real(f->confidence));
    if (ok && (attrs & ATTR_AGE) && (f->attrs & FL_FACE_ATTR_AGE_GENDER)) {
        json_t *ar = json_object();
        ok = fl__api_set(o, "AgeRange", ar) &&
             fl__api_set(ar, "Low", json_integer((json_int_t)fmaxf(0, floorf(f->age - 5)))) &&
             fl__api_set(ar, "High", json_integer((json_int_t)ceilf(f->age + 5)));
    }
    if (ok && (attrs & ATTR_SMILE) && (f->attrs & FL_FACE_ATTR_EXPRESSION)) {
        float p = f->expression[1]; /* happy */
        ok = fl__api_set(o, "Smile", value_conf(p >= 0.5f, 100.0f * fmaxf(p, 1 - p)));
    }
    if (ok && (attrs & ATTR_GENDER) && (f->attrs & FL_FACE_ATTR_AGE_GENDER)) {
        json_t *g = json_object();
        ok = fl__api_set(o, "Gender", g) &&
             fl__api_set(g, "Value", json_string(f->male >= 0.5f ? "Male" : "Female")) &&
             fl__api_set(g, "Confidence", fl__api_real(100.0f * fmaxf(f->male, 1 - f->male)));
    }
    if (ok && (attrs & ATTR_EYES))
        ok = fl__api_set(o, "EyesOpen",
                         value_conf(f->eyes_open > EYES_OPEN_EAR,
                                    threshold_confidence(f->eyes_open, EYES_OPEN_EAR, 0.1f)));
    if (ok && (attrs & ATTR_MOUTH))
        ok = fl__api_set(o, "MouthOpen",
                         value_conf(f->mouth_open > MOUTH_OPEN_RATIO,
                                    threshold_confidence(f->mouth_open, MOUTH_OPEN_RATIO, 0.1f)));
    if (ok && (attrs & ATTR_EMOTIONS) && (f->attrs & FL_FACE_ATTR_EXPRESSION))
        ok = fl__api_set(o, "Emotions", emotions_json(f));
    ok = ok && fl__api_set(o, "Landmarks", landmarks_json(img, f)) &&
         fl__api_set(o, "Pose", pose_json(f)) && fl__api_set(o, "Quality", quality_json(f));
    if (ok && compared)
        ok = fl__api_set(o, "Confidence", fl__api_real(f->confidence));
    if (ok)
        return o;
    json_decref(o);
    return NULL;
}

static json_t *reasons_json(unsigned r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < FL_ARRAY_LEN(reason_names); i++)
        if ((r & (1u << i)) && !fl__api_push(a, json_string(reason_names[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static enum fl_status nomem(json_t *o, struct fl_err *err)
{
    json_decref(o);
    return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
}

/* The collection of the request, still bound to the model the prepare step
 * embedded with. */
static enum fl_status same_collection(struct fl__api_ctx *ctx, const json_t *req,
                                      struct fl__api_coll **out, struct fl_err *err)
{
    enum fl_status rc =
        fl__api_coll_require(ctx->svc, fl__api_get_str(req, "CollectionId"), out, err);
    if (rc == FL_OK && (*out)->model != ctx->job->model)
        rc = fl_err_set(err, FL_ERR_NOT_FOUND, "The collection %s was replaced during the call",
                        (*out)->id);
    return rc;
}

/* ============================== Handlers ============================== */

FL__API_HANDLER(fl__api_op_detect_faces)
{
    struct job_image *im = &ctx->job->a;
    json_t *o = json_object(), *details = json_array();
    (void)req;
    if (!fl__api_set(o, "FaceDetails", details))
        return nomem(o, err);
    for (int i = 0; i < im->n; i++)
        if (!fl__api_push(details, face_detail_json(&im->img, &im->faces[i].f, ctx->job->attrs,
                                                    false)))
            return nomem(o, err);
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_compare_faces)
{
    struct fl__api_image_job *job = ctx->job;
    const struct job_face *src = &job->a.faces[0];
    double thr = fl__api_get_num(ctx, req, "SimilarityThreshold", 80.0);
    enum fl_face_model fm = job->model->face_model;
    json_t *o = json_object(), *sf = json_object(), *matches, *unmatched;
    double *sims;
    int *order;

    if (!fl__api_set(o, "SourceImageFace", sf) ||
        !fl__api_set(sf, "BoundingBox", bbox_json(&job->a.img, &src->f.box)) ||
        !fl__api_set(sf, "Confidence", fl__api_real(src->f.confidence)))
        return nomem(o, err);
    matches = json_array();
    if (!fl__api_set(o, "FaceMatches", matches))
        return nomem(o, err);
    unmatched = json_array();
    if (!fl__api_set(o, "UnmatchedFaces", unmatched))
        return nomem(o, err);
    sims = FL_ARENA_NEW(&ctx->arena, double, (size_t)job->b.n);
    order = FL_ARENA_NEW(&ctx->arena, int, (size_t)job->b.n);
    if (!sims || !order)
        return nomem(o, err);
    for (int i = 0; i < job->b.n; i++) {
        float d = fl_face_distance(fm, src->emb, job->b.faces[i].emb);
        /* the index's distance for this model: squared for L2 */
        if (job->model->metric == FL_INDEX_L2)
            d *= d;
        sims[i] = fl__api_similarity(job->model->model_id, d);
        order[i] = i;
    }
    for (int i = 1; i < job->b.n; i++) /* by similarity, descending */
        for (int j = i; j > 0 && sims[order[j]] > sims[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < job->b.n; k++) {
        int i = order[k];
        json_t *face = face_detail_json(&job->b.img, &job->b.faces[i].f, 0, true);
        if (sims[i] >= thr) {
            json_t *m = json_object();
            if (!fl__api_push(matches, m) || !fl__api_set(m, "Similarity", fl__api_real(sims[i])) ||
                !fl__api_set(m, "Face", face))
                return nomem(o, err);
        } else if (!fl__api_push(unmatched, face)) {
            return nomem(o, err);
        }
    }
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_index_faces)
{
    struct fl__api_image_job *job = ctx->job;
    struct job_image *im = &job->a;
    const char *ext = fl__api_get_str(req, "ExternalImageId");
    struct fl__api_coll *c;
    struct fl_store_face_list dup;
    struct fl_store_face *recs = NULL;
    json_t *o = NULL, *records, *unindexed;
    size_t n_recs = 0;
    enum fl_status rc = same_collection(ctx, req, &c, err);
    if (rc != FL_OK)
        return rc;
    /* the same image with the same ExternalImageId is not indexed twice:
     * answer with the faces it already gave */
    rc = fl_store_faces_find_by_image(ctx->st, c->id, im->image_id, ext, &ctx->arena, &dup, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    records = json_array();
    if (!fl__api_set(o, "FaceRecords", records))
        return nomem(o, err);
    if (dup.n > 0) {
        for (size_t i = 0; i < dup.n; i++) {
            json_t *r = json_object();
            if (!fl__api_push(records, r) || !fl__api_set(r, "Face", fl__api_face_json(&dup.v[i])))
                return nomem(o, err);
        }
    } else {
        recs = FL_ARENA_NEW(&ctx->arena, struct fl_store_face, (size_t)(im->n ? im->n : 1));
        if (!recs)
            return nomem(o, err);
        for (int i = 0; i < im->n; i++) {
            const struct job_face *jf = &im->faces[i];
            struct fl_store_face *r;
            json_t *rj, *fj;
            if (!jf->embedded)
                continue;
            r = &recs[n_recs++];
            memset(r, 0, sizeof(*r));
            rc = fl_uuid_v4(r->face_id, err);
            if (rc != FL_OK) {
                json_decref(o);
                return rc;
            }
            memcpy(r->image_id, im->image_id, sizeof(r->image_id));
            r->external_image_id = ext;
            r->bbox.left = jf->f.box.x / im->img.w;
            r->bbox.top = jf->f.box.y / im->img.h;
            r->bbox.width = jf->f.box.w / im->img.w;
            r->bbox.height = jf->f.box.h / im->img.h;
            r->confidence = jf->f.confidence;
            r->model_version = c->model->face_model_version;
            r->embedding = jf->emb;
            r->dim = c->model->dim;
            r->crop = jf->crop;
            r->crop_len = jf->crop_len;
            r->created = fl_time_now();
            rj = json_object();
            fj = fl__api_face_json(r);
            if (!fl__api_push(records, rj) || !fl__api_set(rj, "Face", fj) ||
                !fl__api_set(rj, "FaceDetail",
                             face_detail_json(&im->img, &jf->f, job->attrs, false)))
                return nomem(o, err);
        }
    }
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        return nomem(o, err);
    unindexed = json_array();
    if (!fl__api_set(o, "UnindexedFaces", unindexed))
        return nomem(o, err);
    for (int i = 0; dup.n == 0 && i < im->n; i++) {
        json_t *u;
        if (!im->faces[i].reasons)
            continue;
        u = json_object();
        if (!fl__api_push(unindexed, u) ||
            !fl__api_set(u, "Reasons", reasons_json(im->faces[i].reasons)) ||
            !fl__api_set(u, "FaceDetail",
                         face_detail_json(&im->img, &im->faces[i].f, job->attrs, false)))
            return nomem(o, err);
    }
    /* everything that needs memory is done: serialise, then write */
    rc = fl__api_prepare(ctx, o, err);
    if (rc == FL_OK && n_recs)
        rc = fl__api_faces_commit(ctx, c, recs, n_recs, err);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    *out_resp = o;
    return FL_OK;
}

/* The searched (largest passing) face, or NULL. */
static const struct job_face *searched_face(const struct job_image *im)
{
    for (int i = 0; i < im->n; i++)
        if (im->faces[i].embedded)
            return &im->faces[i];
    return NULL;
}

/* Into o: the searched face's box and confidence and its FaceMatches
 * (SearchFacesByImage answers one such set, SearchAllFacesByImage one per
 * face). On error o is left for the caller to free. */
static enum fl_status face_search_json(struct fl__api_ctx *ctx, struct fl__api_coll *c,
                                       const struct job_image *im, const struct job_face *jf,
                                       long long max, double thr, json_t *o, struct fl_err *err)
{
    json_t *matches;
    if (!fl__api_set(o, "SearchedFaceBoundingBox", bbox_json(&im->img, &jf->f.box)) ||
        !fl__api_set(o, "SearchedFaceConfidence", fl__api_real(jf->f.confidence)))
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    matches = json_array();
    if (!fl__api_set(o, "FaceMatches", matches))
        return fl_err_set(err, FL_ERR_NOMEM, "out of memory");
    return fl__api_face_matches(ctx, c, jf->emb, (size_t)max, NULL, thr, matches, err);
}

FL__API_HANDLER(fl__api_op_search_faces_by_image)
{
    struct job_image *im = &ctx->job->a;
    const struct job_face *q = searched_face(im);
    long long max = fl__api_get_int(req, "MaxFaces", 4096);
    double thr = fl__api_get_num(ctx, req, "FaceMatchThreshold", 80.0);
    struct fl__api_coll *c;
    json_t *o;
    enum fl_status rc = same_collection(ctx, req, &c, err);
    if (rc != FL_OK)
        return rc;
    if (!q)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: there are no faces in the image%s",
                          im->n ? " that pass the quality filter" : "");
    o = json_object();
    rc = face_search_json(ctx, c, im, q, max, thr, o, err);
    if (rc != FL_OK) {
        json_decref(o);
        return rc;
    }
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        return nomem(o, err);
    *out_resp = o;
    return FL_OK;
}

FL__API_HANDLER(fl__api_op_search_users_by_image)
{
    struct job_image *im = &ctx->job->a;
    const struct job_face *q = searched_face(im);
    long long max_users = fl__api_get_int(req, "MaxUsers", 500);
    double thr = fl__api_get_num(ctx, req, "UserMatchThreshold", 80.0);
    struct fl__api_coll *c;
    json_t *o, *matches, *unsearched;
    enum fl_status rc = same_collection(ctx, req, &c, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    matches = json_array();
    if (!fl__api_set(o, "UserMatches", matches))
        return nomem(o, err);
    if (q) {
        const float *vec = q->emb;
        json_t *sf = json_object();
        rc = fl__api_user_matches(ctx, c, &vec, NULL, 1, NULL, thr, (size_t)max_users, matches,
                                  err);
        if (rc != FL_OK) {
            json_decref(sf);
            json_decref(o);
            return rc;
        }
        if (!fl__api_set(o, "SearchedFace", sf) ||
            !fl__api_set(sf, "FaceDetail", face_detail_json(&im->img, &q->f, 0, false)))
            return nomem(o, err);
    }
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        return nomem(o, err);
    unsearched = json_array();
    if (!fl__api_set(o, "UnsearchedFaces", unsearched))
        return nomem(o, err);
    for (int i = 0; i < im->n; i++) {
        const struct job_face *jf = &im->faces[i];
        json_t *u, *reasons;
        if (jf == q)
            continue;
        u = json_object();
        reasons = jf->reasons ? reasons_json(jf->reasons) : json_array();
        if (!jf->reasons && reasons && !fl__api_push(reasons, json_string("FACE_NOT_LARGEST"))) {
            json_decref(u);
            json_decref(reasons);
            return nomem(o, err);
        }
        if (!fl__api_push(unsearched, u) || !fl__api_set(u, "Reasons", reasons) ||
            !fl__api_set(u, "FaceDetails", face_detail_json(&im->img, &jf->f, 0, false)))
            return nomem(o, err);
    }
    *out_resp = o;
    return FL_OK;
}

/* FaceLinkService.SearchAllFacesByImage: SearchFacesByImage for every face
 * of the image that passes QualityFilter (default NONE), largest first, each
 * with its own FaceMatches (the same search code, threshold and MaxFaces per
 * face); faces that fail the filter are in UnsearchedFaces with reasons. An
 * image without a searchable face is an empty SearchedFaces, not an error:
 * "who is in this photo" has a valid answer of nobody. */
FL__API_HANDLER(fl__api_op_search_all_faces_by_image)
{
    struct job_image *im = &ctx->job->a;
    long long max = fl__api_get_int(req, "MaxFaces", 4096);
    double thr = fl__api_get_num(ctx, req, "FaceMatchThreshold", 80.0);
    struct fl__api_coll *c;
    json_t *o, *searched, *unsearched;
    enum fl_status rc = same_collection(ctx, req, &c, err);
    if (rc != FL_OK)
        return rc;
    o = json_object();
    searched = json_array();
    if (!fl__api_set(o, "SearchedFaces", searched))
        return nomem(o, err);
    unsearched = json_array();
    if (!fl__api_set(o, "UnsearchedFaces", unsearched))
        return nomem(o, err);
    for (int i = 0; i < im->n; i++) {
        const struct job_face *jf = &im->faces[i];
        json_t *s = json_object();
        if (!jf->embedded) {
            if (!fl__api_push(unsearched, s) ||
                !fl__api_set(s, "Reasons", reasons_json(jf->reasons)) ||
                !fl__api_set(s, "FaceDetail", face_detail_json(&im->img, &jf->f, 0, false)))
                return nomem(o, err);
            continue;
        }
        if (!fl__api_push(searched, s))
            return nomem(o, err);
        rc = face_search_json(ctx, c, im, jf, max, thr, s, err);
        if (rc != FL_OK) {
            json_decref(o);
            return rc;
        }
    }
    if (!fl__api_set(o, "FaceModelVersion", json_string(c->model->face_model_version)))
        return nomem(o, err);
    *out_resp = o;
    return FL_OK;
}

/* ============================== EmbedFaces ============================== */

/* FaceLinkService.EmbedFaces: every face of the image (largest first, at
 * most MaxFaces) with its FaceDetail and its embedding under FaceModel (the
 * service's default model when absent), and the model's provenance: what a
 * user needs to use the vectors anywhere else. Stateless. */
enum fl_status fl__api_prep_embed_faces(struct fl__api_ctx *ctx, json_t *req, struct fl_err *err)
{
    struct fl__api_image_job *job;
    struct fl_face_worker *w = NULL;
    const char *model = fl__api_get_str(req, "FaceModel");
    long long max_faces = fl__api_get_int(req, "MaxFaces", MAX_FACES_DETECTED);
    enum fl_status rc = job_new(ctx, err);
    if (rc != FL_OK)
        return rc;
    job = ctx->job;
    job->attrs = parse_attrs(json_object_get(req, "Attributes"));
    job->model = model ? fl__api_model_find(model) : ctx->svc->default_model;
    if (!job->model)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "Request has invalid parameters: unknown FaceModel '%s' (known: dlib, "
                          "mobilefacenet, or a model id or FaceModelVersion)",
                          model);
    rc = decode_image(req, "Image", &job->a, err);
    if (rc != FL_OK)
        return rc;
    w = fl__api_face_take(ctx->svc, err);
    if (!w)
        return err ? err->code : FL_ERR_INTERNAL;
    rc = detect(w, &job->a, engine_attrs(job->attrs), err);
    if (rc == FL_OK && job->a.n > max_faces)
        job->a.n = (int)max_faces;
    for (int i = 0; rc == FL_OK && i < job->a.n; i++)
        job->a.faces[i].want = true;
    if (rc == FL_OK)
        rc = embed_wanted(w, job->model, &job->a, err);
    fl__api_face_give(ctx->svc, w);
    return rc;
}

FL__API_HANDLER(fl__api_op_embed_faces)
{
    struct fl__api_image_job *job = ctx->job;
    const struct fl_face_model_info *mi = fl_face_model_info(job->model->face_model);
    json_t *o = json_object(), *m = json_object(), *faces;
    (void)req;
    if (!fl__api_set(o, "FaceModel", m) || !fl__api_set(m, "Id", json_string(mi->id)) ||
        !fl__api_set(m, "Name", json_string(mi->name)) ||
        !fl__api_set(m, "FaceModelVersion", json_string(mi->face_model_version)) ||
        !fl__api_set(m, "Dimension", json_integer(mi->dim)) ||
        !fl__api_set(m, "Metric", json_string(mi->metric)) ||
        !fl__api_set(m, "Normalized", json_boolean(mi->normalised)) ||
        !fl__api_set(m, "Alignment", json_string(mi->alignment)))
        return nomem(o, err);
    faces = json_array();
    if (!fl__api_set(o, "Faces", faces))
        return nomem(o, err);
    for (int i = 0; i < job->a.n; i++) {
        const struct job_face *jf = &job->a.faces[i];
        json_t *f = json_object(), *v;
        if (!fl__api_push(faces, f) ||
            !fl__api_set(f, "FaceDetail",
                         face_detail_json(&job->a.img, &jf->f, job->attrs, false)))
            return nomem(o, err);
        v = json_array();
        if (!fl__api_set(f, "Embedding", v))
            return nomem(o, err);
        for (int k = 0; k < mi->dim; k++)
            if (!fl__api_push(v, fl__api_real(jf->emb[k])))
                return nomem(o, err);
    }
    *out_resp = o;
    return FL_OK;
}
