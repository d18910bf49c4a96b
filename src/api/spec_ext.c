/*
 * spec_ext.c: request shapes of FaceLink's own operations
 * (X-Amz-Target: FaceLinkService.<Op>), checked by the same validator as
 * Rekognition's. Where a member means what a Rekognition member means
 * (Image, Attributes) it reuses that member's generated shape, so the
 * limits and errors are the same; the table is therefore assembled once at
 * run time (pthread_once) from spec_table.c.
 *
 * Threading: built once, immutable afterwards.
 */
#include "api/spec.h"

#include <pthread.h>
#include <string.h>

/* clang-format off */
static const struct fl__api_shape sh_face_model = {
    .name = "FaceModel", .type = FL__API_T_STRING, .has_min = true, .min = 1,
    .has_max = true, .max = 255, .pattern = "[a-zA-Z0-9_.\\-@:]+"};
static const struct fl__api_shape sh_embed_max_faces = {
    .name = "EmbedFaces_MaxFaces", .type = FL__API_T_INTEGER, .has_min = true, .min = 1,
    .has_max = true, .max = 100};
/* clang-format on */

static struct fl__api_member mem_embed[4];
static struct fl__api_shape sh_embed_req;
static const char *const err_embed[] = {"InvalidParameterException", "ImageTooLargeException",
                                        "InvalidImageFormatException", "InternalServerError",
                                        "ThrottlingException"};
static struct fl__api_op_spec ext_ops[1];
static pthread_once_t ext_once = PTHREAD_ONCE_INIT;

static const struct fl__api_shape *rek_member(const char *op, const char *member)
{
    for (size_t i = 0; i < fl__api_spec_n_ops; i++)
        if (strcmp(fl__api_spec_ops[i].name, op) == 0)
            return fl__api_shape_member(fl__api_spec_ops[i].input, member)->shape;
    FL_ASSERT(!"Rekognition operation missing from the spec table");
    return NULL;
}

static void ext_build(void)
{
    /* EmbedFaces: {Image, FaceModel?, MaxFaces?, Attributes?} */
    mem_embed[0] = (struct fl__api_member){"Image", rek_member("DetectFaces", "Image"), true};
    mem_embed[1] = (struct fl__api_member){"FaceModel", &sh_face_model, false};
    mem_embed[2] = (struct fl__api_member){"MaxFaces", &sh_embed_max_faces, false};
    mem_embed[3] = (struct fl__api_member){"Attributes", rek_member("DetectFaces", "Attributes"),
                                           false, false, 0.0, "DEFAULT"};
    sh_embed_req = (struct fl__api_shape){.name = "EmbedFacesRequest",
                                          .type = FL__API_T_STRUCT,
                                          .members = mem_embed,
                                          .n_members = (int)FL_ARRAY_LEN(mem_embed)};
    ext_ops[0] = (struct fl__api_op_spec){"EmbedFaces", "FaceLinkService.EmbedFaces",
                                          &sh_embed_req, err_embed, (int)FL_ARRAY_LEN(err_embed),
                                          NULL};
}

const struct fl__api_op_spec *fl__api_spec_find_ext(const char *name)
{
    pthread_once(&ext_once, ext_build);
    for (size_t i = 0; i < FL_ARRAY_LEN(ext_ops); i++)
        if (strcmp(ext_ops[i].name, name) == 0)
            return &ext_ops[i];
    return NULL;
}
