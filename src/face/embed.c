/*
 * embed.c: faces -> embedding vectors, for every face model; and the fused
 * face model (FL_FACE_MODEL_FUSED, FaceModelVersion "103.0"), FaceLink's
 * default: both embedders, each on its chip and that chip's mirror image, in
 * one 320-d vector compared by cosine.
 *
 * Batching: fl_face_embed_faces() cuts every face's chips first and runs them
 * through fl_face_embed_chips() together (the networks read their weights once
 * per batch, pipeline.c), a few faces at a time so memory stays bounded;
 * batched and single runs give bit-identical vectors, so fl_face_embed() is
 * simply the one-face case.
 *
 * What: out = [ sqrt(W) * unit(dlib(chip) + dlib(mirror)),
 *               sqrt(1 - W) * unit(mfn(chip) + mfn(mirror)) ]
 * so the cosine of two fused vectors is W * cos_dlib + (1 - W) * cos_mfn.
 *
 * Why this form:
 *   - One vector per face, so the index, the store, export and re-indexing
 *     treat it like any other model (the index knows nothing of faces).
 *   - W puts both models on one scale, as z-score fusion does: the two
 *     cosines spread very differently (over LFW's 6,000 pairs, flip-averaged:
 *     standard deviation 0.0656 for dlib, whose cosines all lie near 1, and
 *     0.3929 for MobileFaceNet), so equal weights would let MobileFaceNet
 *     decide alone. W = sd_mfn / (sd_dlib + sd_mfn) = 0.857 weights each
 *     cosine by the inverse of its spread. It is one number from the spreads,
 *     not a search for the best accuracy; the per-fold z-fusion of
 *     `facelink eval lfw --model zfusion`, which never sees its test fold,
 *     scores as high (docs/internals/face.md has the figures).
 *   - The mirror image: both chip templates are (nearly) left-right
 *     symmetric, so the mirrored chip is the aligned chip of the mirrored
 *     face; averaging the two removes some pose and lighting asymmetry
 *     (dlib on LFW: 99.07% -> 99.27%). The two chips run as one batch.
 *   - The dlib half is normalised: its raw vectors have norms of 1.3-1.5 and
 *     dlib's Euclidean distance ranks LFW pairs like the cosine does (99.27%
 *     vs 99.30% with flip).
 *
 * The evaluation (eval_set.c) builds its fused vectors from its cached
 * flip-averaged dlib and MobileFaceNet vectors with these same functions, so
 * `facelink eval` measures exactly what the service stores.
 *
 * Threading: as the rest of face/: a worker per thread.
 */
#include "face/face_int.h"

#include "img/img.h"

#include <math.h>
#include <string.h>

#define FUSED_DLIB_DIM 128
#define FUSED_MFN_DIM 192

enum fl_status fl_face_chip_mirror(const struct fl_image *chip, struct fl_image *out,
                                   struct fl_err *err)
{
    enum fl_status rc = fl_image_alloc(chip->w, chip->h, out, err);
    if (rc != FL_OK)
        return rc;
    for (int y = 0; y < chip->h; y++) {
        const uint8_t *src = chip->px + (size_t)y * chip->stride;
        uint8_t *dst = out->px + (size_t)y * out->stride;
        for (int x = 0; x < chip->w; x++)
            memcpy(dst + 3 * x, src + 3 * (chip->w - 1 - x), 3);
    }
    return FL_OK;
}

void fl_face_flip_mean(enum fl_face_model m, const float *a, const float *b, float *out)
{
    const struct fl_face_model_info *mi = fl_face_model_info(m);
    double n2 = 0;
    for (int k = 0; k < mi->dim; k++) {
        out[k] = 0.5f * (a[k] + b[k]);
        n2 += (double)out[k] * out[k];
    }
    if (mi->normalised && n2 > 0)
        for (int k = 0; k < mi->dim; k++)
            out[k] = (float)(out[k] / sqrt(n2));
}

/* dst[0..n) = src scaled to norm sqrt(weight) (zeros stay zeros). */
static void scaled_unit(const float *src, int n, double weight, float *dst)
{
    double n2 = 0;
    for (int k = 0; k < n; k++)
        n2 += (double)src[k] * src[k];
    for (int k = 0; k < n; k++)
        dst[k] = n2 > 0 ? (float)(src[k] * sqrt(weight / n2)) : 0.0f;
}

void fl_face_fuse(const float *dlib, const float *mfn, float *out)
{
    scaled_unit(dlib, FUSED_DLIB_DIM, FL_FACE_FUSED_W_DLIB, out);
    scaled_unit(mfn, FUSED_MFN_DIM, 1.0 - FL_FACE_FUSED_W_DLIB, out + FUSED_DLIB_DIM);
}

/* Faces per round of fl_face_embed_faces(): 4 faces = 8 chips with their
 * mirror images, the largest dlib batch (pipeline.c). */
#define FACES_PER_ROUND 4

/* Embeddings of the n <= FACES_PER_ROUND faces with base model m (dlib or
 * MobileFaceNet) into out[n * dim]; with flip, each is the flip mean of the
 * face's chip and its mirror image. */
static enum fl_status embed_round(struct fl_face_worker *w, const struct fl_image *img,
                                  const struct fl_face *const *faces, int n,
                                  enum fl_face_model m, bool flip, float *out,
                                  struct fl_err *err)
{
    struct fl_image chips[2 * FACES_PER_ROUND];
    float v[2 * FACES_PER_ROUND * FL_FACE_MAX_DIM];
    int dim = fl_face_model_info(m)->dim, per = flip ? 2 : 1, n_chips = 0;
    enum fl_status rc = FL_OK;

    FL_ASSERT(n >= 1 && n <= FACES_PER_ROUND);
    memset(chips, 0, sizeof(chips));
    for (int i = 0; i < n && rc == FL_OK; i++) {
        rc = fl_face_chip(w, img, faces[i], m, &chips[per * i], err);
        n_chips += rc == FL_OK;
        if (rc == FL_OK && flip) {
            rc = fl_face_chip_mirror(&chips[2 * i], &chips[2 * i + 1], err);
            n_chips += rc == FL_OK;
        }
    }
    if (rc == FL_OK)
        rc = fl_face_embed_chips(w, chips, n_chips, m, flip ? v : out, err);
    for (int i = 0; rc == FL_OK && flip && i < n; i++)
        fl_face_flip_mean(m, v + (size_t)(2 * i) * dim, v + (size_t)(2 * i + 1) * dim,
                          out + (size_t)i * dim);
    for (int k = 0; k < n_chips; k++)
        fl_image_free(&chips[k]);
    return rc;
}

enum fl_status fl_face_embed_faces(struct fl_face_worker *w, const struct fl_image *img,
                                   const struct fl_face *const *faces, int n,
                                   enum fl_face_model m, float *out, struct fl_err *err)
{
    int dim = fl_face_model_info(m)->dim;
    if (n < 1)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "no faces to embed");
    for (int i = 0; i < n; i += FACES_PER_ROUND) {
        int k = n - i < FACES_PER_ROUND ? n - i : FACES_PER_ROUND;
        float d[FACES_PER_ROUND * FUSED_DLIB_DIM], f[FACES_PER_ROUND * FUSED_MFN_DIM];
        enum fl_status rc;
        if (m != FL_FACE_MODEL_FUSED) {
            rc = embed_round(w, img, faces + i, k, m, false, out + (size_t)i * dim, err);
        } else {
            rc = embed_round(w, img, faces + i, k, FL_FACE_MODEL_DLIB, true, d, err);
            if (rc == FL_OK)
                rc = embed_round(w, img, faces + i, k, FL_FACE_MODEL_MFN, true, f, err);
            for (int j = 0; rc == FL_OK && j < k; j++)
                fl_face_fuse(d + (size_t)j * FUSED_DLIB_DIM, f + (size_t)j * FUSED_MFN_DIM,
                             out + (size_t)(i + j) * dim);
        }
        if (rc != FL_OK)
            return rc;
    }
    return FL_OK;
}

enum fl_status fl_face_embed(struct fl_face_worker *w, const struct fl_image *img,
                             const struct fl_face *f, enum fl_face_model m, float *out,
                             struct fl_err *err)
{
    return fl_face_embed_faces(w, img, &f, 1, m, out, err);
}
