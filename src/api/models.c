/*
 * models.c: the face models a collection can be bound to, as the API layer
 * sees them (model id, FaceModelVersion string, embedding length, metric).
 *
 * Provisional: the face engine (src/face, not merged yet) will own the model
 * registry; until then this table names the two embedders MODELS.md
 * recommends so collections can be created and searched. FaceModelVersion
 * strings are numeric ("101.0") so SDKs that parse them keep working
 * (REKOGNITION.md §4.6), and never collide with AWS's "1.0".."7.0".
 *
 * Threading: immutable data.
 */
#include "api/api.h"

#include <string.h>

static const struct fl__api_model models[] = {
    /* dlib ResNet-29 (face-api face_recognition_model): 128-d, raw Euclidean */
    {"dlib-resnet128@face-api-1.7.15", "101.0", 128, FL_INDEX_L2},
    /* MobileFaceNet (expo MobileFaceNet.tflite): 192-d, cosine after L2-norm */
    {"mobilefacenet192@expo", "102.0", 192, FL_INDEX_COSINE},
};

const struct fl__api_model *fl__api_model_find(const char *id_or_version)
{
    if (!id_or_version)
        return NULL;
    for (size_t i = 0; i < FL_ARRAY_LEN(models); i++)
        if (strcmp(models[i].model_id, id_or_version) == 0 ||
            strcmp(models[i].face_model_version, id_or_version) == 0)
            return &models[i];
    return NULL;
}

const struct fl__api_model *fl__api_model_default(void)
{
    return &models[0];
}
