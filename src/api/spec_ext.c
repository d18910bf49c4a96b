/*
 * spec_ext.c: request shapes of FaceLink's own operations
 * (X-Amz-Target: FaceLinkService.<Op>), checked by the same validator as
 * Rekognition's. Where a member means what a Rekognition member means
 * (CollectionId, Image, FaceIds, MaxFaces, FaceMatchThreshold, QualityFilter,
 * Attributes) it reuses that member's generated row, so the limits, defaults
 * and errors are the same; the table is therefore assembled once at run time
 * (pthread_once) from spec_table.c.
 *
 * Operations (docs/internals/api.md, "FaceLinkService extensions"):
 *   EmbedFaces              {Image, FaceModel?, MaxFaces?, Attributes?}
 *   GetFaceEmbeddings       {CollectionId, FaceIds}
 *   SearchFacesByEmbedding  {CollectionId, Embedding, MaxFaces?, FaceMatchThreshold?}
 *   SearchAllFacesByImage   {CollectionId, Image, MaxFaces?, FaceMatchThreshold?, QualityFilter?}
 *   ExportCollection        {CollectionId, IncludeCrops?, MaxResults?, NextToken?}
 *   ImportFaces             {Files, CollectionId?} or {ImportId, Files} (a staged page)
 *   StartImport             {Files (manifest.json), CollectionId?}
 *   CommitImport            {ImportId}
 *   AbortImport             {ImportId}
 *   DescribeImport          {ImportId}
 *   ReindexCollection       {CollectionId, FaceModel}
 *   DescribeJob             {JobId}
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
static const struct fl__api_shape sh_float = {.name = "Float", .type = FL__API_T_FLOAT};
static const struct fl__api_shape sh_embedding = {
    .name = "Embedding", .type = FL__API_T_LIST, .has_min = true, .min = 1,
    .has_max = true, .max = 4096, .elem = &sh_float};
static const struct fl__api_shape sh_bool = {.name = "Boolean", .type = FL__API_T_BOOLEAN};
static const struct fl__api_shape sh_file_name = {
    .name = "ExportFileName", .type = FL__API_T_STRING, .has_min = true, .min = 1,
    .has_max = true, .max = 128, .pattern = "[a-zA-Z0-9_.\\-/]+"};
static const struct fl__api_shape sh_file_bytes = {
    .name = "ExportFileBytes", .type = FL__API_T_BLOB, .has_max = true, .max = 16777216};
static const struct fl__api_shape sh_files = {
    .name = "ExportFiles", .type = FL__API_T_MAP, .has_min = true, .min = 1,
    .has_max = true, .max = 1000000, .key = &sh_file_name, .elem = &sh_file_bytes};
static const struct fl__api_shape sh_export_max = {
    .name = "ExportMaxResults", .type = FL__API_T_INTEGER, .has_min = true, .min = 1,
    .has_max = true, .max = 4096};
static const struct fl__api_shape sh_export_token = {
    .name = "ExportToken", .type = FL__API_T_STRING, .has_min = true, .min = 1,
    .has_max = true, .max = 1024};
static const struct fl__api_shape sh_import_id = {
    .name = "ImportId", .type = FL__API_T_STRING, .has_min = true, .min = 1,
    .has_max = true, .max = 64, .pattern = "[0-9a-f\\-]+"};
static const struct fl__api_shape sh_job_id = {
    .name = "JobId", .type = FL__API_T_STRING, .has_min = true, .min = 1,
    .has_max = true, .max = 64, .pattern = "[0-9a-f\\-]+"};
/* clang-format on */

static const char *const err_image[] = {"InvalidParameterException", "ImageTooLargeException",
                                        "InvalidImageFormatException", "InternalServerError",
                                        "ThrottlingException"};
static const char *const err_coll[] = {"InvalidParameterException", "ResourceNotFoundException",
                                       "InternalServerError", "ThrottlingException"};
static const char *const err_coll_image[] = {
    "InvalidParameterException",   "ResourceNotFoundException", "ImageTooLargeException",
    "InvalidImageFormatException", "InternalServerError",       "ThrottlingException"};
static const char *const err_export[] = {"InvalidParameterException", "ResourceNotFoundException",
                                         "InvalidPaginationTokenException", "InternalServerError",
                                         "ThrottlingException"};
static const char *const err_import[] = {"InvalidParameterException", "ConflictException",
                                         "ResourceNotFoundException", "InternalServerError",
                                         "ThrottlingException"};

enum { N_EXT = 12, MAX_MEMBERS = 5 };
static struct fl__api_member members[N_EXT][MAX_MEMBERS];
static struct fl__api_shape shapes[N_EXT];
static struct fl__api_op_spec ext_ops[N_EXT];
static pthread_once_t ext_once = PTHREAD_ONCE_INIT;

/* A copy of Rekognition operation op's member row (shape, default), with
 * `required` as given. */
static struct fl__api_member rek(const char *op, const char *member, bool required)
{
    struct fl__api_member m;
    for (size_t i = 0; i < fl__api_spec_n_ops; i++) {
        if (strcmp(fl__api_spec_ops[i].name, op) == 0) {
            const struct fl__api_member *r =
                fl__api_shape_member(fl__api_spec_ops[i].input, member);
            FL_ASSERT(r != NULL);
            m = *r;
            m.required = required;
            return m;
        }
    }
    FL_ASSERT(!"Rekognition operation missing from the spec table");
    memset(&m, 0, sizeof(m));
    return m;
}

static struct fl__api_member own(const char *name, const struct fl__api_shape *sh, bool required)
{
    struct fl__api_member m;
    memset(&m, 0, sizeof(m));
    m.name = name;
    m.shape = sh;
    m.required = required;
    return m;
}

static int n_built;

static void add_op(const char *name, const char *target, int n_mem, const char *const *errors,
                   int n_errors)
{
    int i = n_built++;
    FL_ASSERT(i < N_EXT && n_mem <= MAX_MEMBERS);
    shapes[i] = (struct fl__api_shape){
        .name = name, .type = FL__API_T_STRUCT, .members = members[i], .n_members = n_mem};
    ext_ops[i] = (struct fl__api_op_spec){name, target, &shapes[i], errors, n_errors, NULL};
}

#define ERRS(a) a, (int)FL_ARRAY_LEN(a)

static void ext_build(void)
{
    struct fl__api_member *m;
    int i = 0;

    m = members[i++];
    m[0] = rek("DetectFaces", "Image", true);
    m[1] = own("FaceModel", &sh_face_model, false);
    m[2] = own("MaxFaces", &sh_embed_max_faces, false);
    m[3] = rek("DetectFaces", "Attributes", false);
    m[3].def_str = "DEFAULT";
    add_op("EmbedFaces", "FaceLinkService.EmbedFaces", 4, ERRS(err_image));

    m = members[i++];
    m[0] = rek("SearchFaces", "CollectionId", true);
    m[1] = rek("DeleteFaces", "FaceIds", true);
    add_op("GetFaceEmbeddings", "FaceLinkService.GetFaceEmbeddings", 2, ERRS(err_coll));

    m = members[i++];
    m[0] = rek("SearchFaces", "CollectionId", true);
    m[1] = own("Embedding", &sh_embedding, true);
    m[2] = rek("SearchFaces", "MaxFaces", false);
    m[3] = rek("SearchFaces", "FaceMatchThreshold", false);
    add_op("SearchFacesByEmbedding", "FaceLinkService.SearchFacesByEmbedding", 4, ERRS(err_coll));

    m = members[i++];
    m[0] = rek("SearchFacesByImage", "CollectionId", true);
    m[1] = rek("SearchFacesByImage", "Image", true);
    m[2] = rek("SearchFacesByImage", "MaxFaces", false);
    m[3] = rek("SearchFacesByImage", "FaceMatchThreshold", false);
    m[4] = rek("SearchFacesByImage", "QualityFilter", false);
    add_op("SearchAllFacesByImage", "FaceLinkService.SearchAllFacesByImage", 5,
           ERRS(err_coll_image));

    m = members[i++];
    m[0] = rek("SearchFaces", "CollectionId", true);
    m[1] = own("IncludeCrops", &sh_bool, false);
    m[2] = own("MaxResults", &sh_export_max, false);
    m[3] = own("NextToken", &sh_export_token, false);
    add_op("ExportCollection", "FaceLinkService.ExportCollection", 4, ERRS(err_export));

    m = members[i++];
    m[0] = own("Files", &sh_files, true);
    m[1] = rek("SearchFaces", "CollectionId", false);
    m[2] = own("ImportId", &sh_import_id, false);
    add_op("ImportFaces", "FaceLinkService.ImportFaces", 3, ERRS(err_import));

    m = members[i++];
    m[0] = own("Files", &sh_files, true);
    m[1] = rek("SearchFaces", "CollectionId", false);
    add_op("StartImport", "FaceLinkService.StartImport", 2, ERRS(err_import));

    m = members[i++];
    m[0] = own("ImportId", &sh_import_id, true);
    add_op("CommitImport", "FaceLinkService.CommitImport", 1, ERRS(err_import));

    m = members[i++];
    m[0] = own("ImportId", &sh_import_id, true);
    add_op("AbortImport", "FaceLinkService.AbortImport", 1, ERRS(err_import));

    m = members[i++];
    m[0] = own("ImportId", &sh_import_id, true);
    add_op("DescribeImport", "FaceLinkService.DescribeImport", 1, ERRS(err_import));

    m = members[i++];
    m[0] = rek("SearchFaces", "CollectionId", true);
    m[1] = own("FaceModel", &sh_face_model, true);
    add_op("ReindexCollection", "FaceLinkService.ReindexCollection", 2, ERRS(err_import));

    m = members[i++];
    m[0] = own("JobId", &sh_job_id, true);
    add_op("DescribeJob", "FaceLinkService.DescribeJob", 1, ERRS(err_coll));
    FL_ASSERT(n_built == N_EXT);
}

const struct fl__api_op_spec *fl__api_spec_find_ext(const char *name)
{
    pthread_once(&ext_once, ext_build);
    for (size_t i = 0; i < FL_ARRAY_LEN(ext_ops); i++)
        if (strcmp(ext_ops[i].name, name) == 0)
            return &ext_ops[i];
    return NULL;
}
