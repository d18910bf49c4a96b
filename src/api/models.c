/*
 * models.c: the face models a collection can be bound to, as the API layer
 * sees them (model id, FaceModelVersion string, embedding length, index
 * metric). One registry: every row is derived from the face engine's own
 * table (fl_face_model_info), so the API and the engine cannot disagree.
 * FaceModelVersion strings are numeric ("101.0") so SDKs that parse them
 * keep working (REKOGNITION.md §4.6), and never collide with AWS's
 * "1.0".."7.0". The default is face/'s FL_FACE_MODEL_DEFAULT.
 *
 * Threading: the table is built once (pthread_once) and then immutable.
 */
#include "api/api.h"

#include <pthread.h>
#include <string.h>

static struct fl__api_model models[FL_FACE_MODEL_COUNT_];
static pthread_once_t models_once = PTHREAD_ONCE_INIT;

static void models_build(void)
{
    for (int i = 0; i < FL_FACE_MODEL_COUNT_; i++) {
        const struct fl_face_model_info *mi = fl_face_model_info((enum fl_face_model)i);
        models[i].model_id = mi->id;
        models[i].face_model_version = mi->face_model_version;
        models[i].dim = (uint32_t)mi->dim;
        /* dlib compares raw vectors by Euclidean distance (the index keeps it
         * squared); normalised models compare by cosine */
        models[i].metric = mi->normalised ? FL_INDEX_COSINE : FL_INDEX_L2;
        models[i].face_model = (enum fl_face_model)i;
    }
}

const struct fl__api_model *fl__api_model_find(const char *id_or_version)
{
    enum fl_face_model m;
    pthread_once(&models_once, models_build);
    if (!id_or_version || !fl_face_model_parse(id_or_version, &m))
        return NULL;
    return &models[m];
}

const struct fl__api_model *fl__api_model_default(void)
{
    pthread_once(&models_once, models_build);
    return &models[FL_FACE_MODEL_DEFAULT];
}
