/*
 * cmd_face.c: `facelink detect`, `facelink embed` and `facelink compare`:
 * the image operations from the command line, on a service opened without a
 * store (nothing is written to disk). Each builds the same JSON request an
 * SDK would send and prints the response, pretty-printed, so what the CLI
 * shows is exactly what the API answers:
 *
 *   detect IMAGE [--attributes ALL|DEFAULT|AGE_RANGE,GENDER,...]  DetectFaces
 *   embed IMAGE [--model NAME] [--max-faces N] [--attributes ...]  FaceLinkService.EmbedFaces
 *   compare SOURCE TARGET [--threshold N]                          CompareFaces
 *
 * Common options: --models DIR (where scripts/setup put the models).
 * Exit status: 0 on success, 1 when the operation failed (its AWS error name
 * and message go to stderr), 2 on bad usage. JSON strings from jansson are
 * freed with fl_free_string(): main() calls fl_init() first, which routes
 * jansson's allocation through the library.
 */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fl_cli_detect(int argc, char **argv);
int fl_cli_embed(int argc, char **argv);
int fl_cli_compare(int argc, char **argv);


struct face_opts {
    const char *files[2];
    int n_files;
    const char *models_dir;
    const char *attributes; /* comma-separated */
    const char *model;
    const char *threshold;
    const char *max_faces;
};

static int usage(const char *cmd, const char *synopsis)
{
    fprintf(stderr, "usage: facelink %s %s [--models DIR]\n", cmd, synopsis);
    return 2;
}

/* Parse argv (after the command name); 0 on success. */
static int parse(int argc, char **argv, struct face_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->models_dir = "models";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--models") == 0)
            slot = &o->models_dir;
        else if (strcmp(a, "--attributes") == 0)
            slot = &o->attributes;
        else if (strcmp(a, "--model") == 0)
            slot = &o->model;
        else if (strcmp(a, "--threshold") == 0)
            slot = &o->threshold;
        else if (strcmp(a, "--max-faces") == 0)
            slot = &o->max_faces;
        else if (a[0] == '-' && a[1])
            return -1;
        if (slot) {
            if (i + 1 >= argc)
                return -1;
            *slot = argv[++i];
        } else if (o->n_files < 2) {
            o->files[o->n_files++] = a;
        } else {
            return -1;
        }
    }
    return 0;
}

/* "A,B,C" -> ["A","B","C"] */
static json_t *attr_list(const char *s)
{
    json_t *a = json_array();
    while (s && *s) {
        const char *c = strchr(s, ',');
        size_t n = c ? (size_t)(c - s) : strlen(s);
        json_array_append_new(a, json_stringn(s, n));
        s = c ? c + 1 : NULL;
    }
    return a;
}

/* Run target with req on a store-less service; print the response. */
static int run(const char *target, json_t *req, const struct face_opts *o)
{
    struct fl_service_config cfg;
    struct fl_service *svc;
    struct fl_err err;
    char *body = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    enum fl_status rc;
    int status = 1;

    memset(&cfg, 0, sizeof(cfg));
    cfg.no_store = 1;
    cfg.models_dir = o->models_dir;
    cfg.n_workers = 1;
    svc = fl_service_open(&cfg, &err);
    if (!svc || !body) {
        fprintf(stderr, "facelink: %s\n", svc ? "out of memory" : err.msg);
        fl_service_close(svc);
        fl_free_string(body);
        return 1;
    }
    rc = fl_service_call(svc, target, body, strlen(body), &out, &len, &err);
    if (rc == FL_OK) {
        json_t *resp = json_loadb(out, len, 0, NULL);
        char *pretty = resp ? json_dumps(resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                                   JSON_REAL_PRECISION(7))
                            : NULL;
        printf("%s\n", pretty ? pretty : out);
        fl_free_string(pretty);
        json_decref(resp);
        status = 0;
    } else {
        fprintf(stderr, "%s: %s\n", fl_status_exception(rc), err.msg);
    }
    fl_free_string(out);
    fl_free_string(body);
    fl_service_close(svc);
    return status;
}

int fl_cli_detect(int argc, char **argv)
{
    struct face_opts o;
    json_t *req;
    int rc;
    if (parse(argc, argv, &o) != 0 || o.n_files != 1)
        return usage("detect", "IMAGE [--attributes ALL|DEFAULT|AGE_RANGE,GENDER,...]");
    req = json_object();
    if (fl_cli_add_image(req, "Image", o.files[0]) != 0) {
        json_decref(req);
        return 1;
    }
    if (o.attributes)
        json_object_set_new(req, "Attributes", attr_list(o.attributes));
    rc = run("RekognitionService.DetectFaces", req, &o);
    json_decref(req);
    return rc;
}

int fl_cli_embed(int argc, char **argv)
{
    struct face_opts o;
    json_t *req;
    int rc;
    if (parse(argc, argv, &o) != 0 || o.n_files != 1)
        return usage("embed", "IMAGE [--model dlib|mobilefacenet] [--max-faces N] "
                              "[--attributes ...]");
    req = json_object();
    if (fl_cli_add_image(req, "Image", o.files[0]) != 0) {
        json_decref(req);
        return 1;
    }
    if (o.model)
        json_object_set_new(req, "FaceModel", json_string(o.model));
    if (o.max_faces)
        json_object_set_new(req, "MaxFaces", json_integer(strtol(o.max_faces, NULL, 10)));
    if (o.attributes)
        json_object_set_new(req, "Attributes", attr_list(o.attributes));
    rc = run("FaceLinkService.EmbedFaces", req, &o);
    json_decref(req);
    return rc;
}

int fl_cli_compare(int argc, char **argv)
{
    struct face_opts o;
    json_t *req;
    int rc;
    if (parse(argc, argv, &o) != 0 || o.n_files != 2)
        return usage("compare", "SOURCE TARGET [--threshold 0-100]");
    req = json_object();
    if (fl_cli_add_image(req, "SourceImage", o.files[0]) != 0 ||
        fl_cli_add_image(req, "TargetImage", o.files[1]) != 0) {
        json_decref(req);
        return 1;
    }
    if (o.threshold)
        json_object_set_new(req, "SimilarityThreshold", json_real(strtod(o.threshold, NULL)));
    rc = run("RekognitionService.CompareFaces", req, &o);
    json_decref(req);
    return rc;
}
