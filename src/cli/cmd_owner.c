/*
 * cmd_owner.c: the "own your embeddings" commands (issue 7), each a thin
 * client of one FaceLinkService operation on a local service opened on
 * --data-dir (default "data", the directory `facelink serve` uses), through
 * the public API only:
 *
 *   embeddings COLLECTION FACEID...                 GetFaceEmbeddings
 *   search-vector COLLECTION [VECTOR.json|-]        SearchFacesByEmbedding
 *       [--threshold N] [--max-faces N]             (a JSON array of numbers)
 *   search-all COLLECTION IMAGE [--threshold N]     SearchAllFacesByImage
 *       [--max-faces N] [--quality NONE|LOW|...]
 *   reindex COLLECTION --model NAME                 ReindexCollection, then
 *       [--no-progress]                             DescribeJob until it ends
 *   job JOBID                                       DescribeJob
 *
 * The argument parser and the call helpers here are shared with
 * cmd_export.c (export, import) and cmd_migrate.c (migrate) through cli.h.
 *
 * They print the operation's JSON answer, pretty-printed. A running server
 * on the same data directory keeps working (SQLite allows several
 * processes); reading commands see what it has committed.
 *
 * Exit status: 0 success, 1 the operation failed (AWS error name and message
 * on stderr), 2 bad usage.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fl_cli_parse(int argc, char **argv, struct fl_cli_opts *o, int max_pos)
{
    memset(o, 0, sizeof(*o));
    o->models_dir = "models";
    o->data_dir = "data";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        static const struct {
            const char *flag;
            size_t off;
        } flags[] = {
            {"--models", offsetof(struct fl_cli_opts, models_dir)},
            {"--data-dir", offsetof(struct fl_cli_opts, data_dir)},
            {"--threshold", offsetof(struct fl_cli_opts, threshold)},
            {"--max-faces", offsetof(struct fl_cli_opts, max_faces)},
            {"--quality", offsetof(struct fl_cli_opts, quality)},
            {"--collection", offsetof(struct fl_cli_opts, collection)},
            {"--model", offsetof(struct fl_cli_opts, model)},
            {"--from-endpoint", offsetof(struct fl_cli_opts, endpoint)},
            {"--images", offsetof(struct fl_cli_opts, images)},
            {"--region", offsetof(struct fl_cli_opts, region)},
            {"--access-key", offsetof(struct fl_cli_opts, access_key)},
            {"--secret-key", offsetof(struct fl_cli_opts, secret_key)},
            {"--page-size", offsetof(struct fl_cli_opts, max_faces)},
        };
        if (strcmp(a, "--no-crops") == 0) {
            o->no_crops = 1;
            continue;
        }
        if (strcmp(a, "--no-progress") == 0) {
            o->no_progress = 1;
            continue;
        }
        for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
            if (strcmp(a, flags[k].flag) == 0)
                slot = (const char **)((char *)o + flags[k].off);
        if (!slot && a[0] == '-' && a[1])
            return -1;
        if (slot) {
            if (i + 1 >= argc)
                return -1;
            *slot = argv[++i];
        } else if (o->n_pos < max_pos && o->n_pos < FL_CLI_MAX_POS) {
            o->pos[o->n_pos++] = a;
        } else {
            return -1;
        }
    }
    return 0;
}

struct fl_service *fl_cli_open(const struct fl_cli_opts *o)
{
    struct fl_service_config cfg;
    struct fl_service *svc;
    struct fl_err err;
    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = o->data_dir;
    cfg.models_dir = o->models_dir;
    cfg.n_workers = 2;
    svc = fl_service_open(&cfg, &err);
    if (!svc)
        fprintf(stderr, "facelink: %s\n", err.msg);
    return svc;
}

json_t *fl_cli_call(struct fl_service *svc, const char *target, json_t *req)
{
    struct fl_err err;
    char *body = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(17)), *out = NULL;
    size_t len = 0;
    json_t *resp = NULL;
    enum fl_status rc;
    if (!body) {
        fprintf(stderr, "facelink: out of memory\n");
        return NULL;
    }
    rc = fl_service_call(svc, target, body, strlen(body), &out, &len, &err);
    if (rc == FL_OK) {
        resp = json_loadb(out, len, 0, NULL);
        if (!resp)
            fprintf(stderr, "facelink: unreadable answer from %s\n", target);
    } else {
        fprintf(stderr, "%s: %s\n", fl_status_exception(rc), err.msg);
    }
    fl_free_string(out);
    fl_free_string(body);
    return resp;
}

int fl_cli_print(json_t *resp)
{
    char *pretty;
    if (!resp)
        return 1;
    pretty = json_dumps(resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    printf("%s\n", pretty ? pretty : "{}");
    fl_free_string(pretty);
    json_decref(resp);
    return 0;
}

int fl_cli_add_image(json_t *req, const char *name, const char *path)
{
    struct fl_err err;
    char *bytes = NULL, *b64;
    size_t n = 0;
    json_t *im;
    if (fl_read_file(path, (size_t)64 << 20, &bytes, &n, &err) != FL_OK) {
        fprintf(stderr, "facelink: %s\n", err.msg);
        return -1;
    }
    b64 = fl_base64(bytes, n);
    fl_free_string(bytes);
    if (!b64) {
        fprintf(stderr, "facelink: out of memory\n");
        return -1;
    }
    im = json_object();
    json_object_set_new(im, "Bytes", json_string(b64));
    json_object_set_new(req, name, im);
    fl_free_string(b64);
    return 0;
}

/* Run one call on a fresh local service and print the answer. */
static int run_print(const struct fl_cli_opts *o, const char *target, json_t *req)
{
    struct fl_service *svc = fl_cli_open(o);
    int rc = 1;
    if (svc)
        rc = fl_cli_print(fl_cli_call(svc, target, req));
    fl_service_close(svc);
    json_decref(req);
    return rc;
}

static void set_common(json_t *req, const struct fl_cli_opts *o)
{
    if (o->threshold)
        json_object_set_new(req, "FaceMatchThreshold", json_real(strtod(o->threshold, NULL)));
    if (o->max_faces)
        json_object_set_new(req, "MaxFaces", json_integer(strtol(o->max_faces, NULL, 10)));
}

#define COMMON " [--data-dir DIR] [--models DIR]"

int fl_cli_embeddings(int argc, char **argv)
{
    struct fl_cli_opts o;
    json_t *req, *ids;
    if (fl_cli_parse(argc, argv, &o, FL_CLI_MAX_POS) != 0 || o.n_pos < 2) {
        fprintf(stderr, "usage: facelink embeddings COLLECTION FACEID..." COMMON "\n");
        return 2;
    }
    req = json_object();
    ids = json_array();
    json_object_set_new(req, "CollectionId", json_string(o.pos[0]));
    for (int i = 1; i < o.n_pos; i++)
        json_array_append_new(ids, json_string(o.pos[i]));
    json_object_set_new(req, "FaceIds", ids);
    return run_print(&o, "FaceLinkService.GetFaceEmbeddings", req);
}

int fl_cli_search_vector(int argc, char **argv)
{
    struct fl_cli_opts o;
    json_t *req, *vec;
    json_error_t je;
    if (fl_cli_parse(argc, argv, &o, 2) != 0 || o.n_pos < 1) {
        fprintf(stderr, "usage: facelink search-vector COLLECTION [VECTOR.json|-] [--threshold N] "
                        "[--max-faces N]" COMMON "\n");
        return 2;
    }
    if (o.n_pos < 2 || strcmp(o.pos[1], "-") == 0)
        vec = json_loadf(stdin, JSON_DECODE_ANY, &je);
    else
        vec = json_load_file(o.pos[1], JSON_DECODE_ANY, &je);
    if (vec && json_is_object(vec)) { /* accept {"Embedding": [...]} too */
        json_t *e = json_incref(json_object_get(vec, "Embedding"));
        json_decref(vec);
        vec = e;
    }
    if (!json_is_array(vec)) {
        fprintf(stderr, "facelink: the vector must be a JSON array of numbers (%s)\n", je.text);
        json_decref(vec);
        return 2;
    }
    req = json_object();
    json_object_set_new(req, "CollectionId", json_string(o.pos[0]));
    json_object_set_new(req, "Embedding", vec);
    set_common(req, &o);
    return run_print(&o, "FaceLinkService.SearchFacesByEmbedding", req);
}

int fl_cli_search_all(int argc, char **argv)
{
    struct fl_cli_opts o;
    json_t *req;
    if (fl_cli_parse(argc, argv, &o, 2) != 0 || o.n_pos != 2) {
        fprintf(stderr, "usage: facelink search-all COLLECTION IMAGE [--threshold N] "
                        "[--max-faces N] [--quality NONE|AUTO|LOW|MEDIUM|HIGH]" COMMON "\n");
        return 2;
    }
    req = json_object();
    json_object_set_new(req, "CollectionId", json_string(o.pos[0]));
    if (fl_cli_add_image(req, "Image", o.pos[1]) != 0) {
        json_decref(req);
        return 1;
    }
    set_common(req, &o);
    if (o.quality)
        json_object_set_new(req, "QualityFilter", json_string(o.quality));
    return run_print(&o, "FaceLinkService.SearchAllFacesByImage", req);
}

/* `facelink reindex COLLECTION --model NAME`: start ReindexCollection on the
 * local service and follow DescribeJob with a progress bar on stderr until
 * the job ends (the job runs in this process: interrupting it leaves the
 * collection on its old model and the job resumable by the next service
 * opened on the data dir). */
int fl_cli_reindex(int argc, char **argv)
{
    struct fl_cli_opts o;
    struct fl_service *svc;
    json_t *req, *resp;
    char job_id[64];
    int rc = 1;
    if (fl_cli_parse(argc, argv, &o, 1) != 0 || o.n_pos != 1 || !o.model) {
        fprintf(stderr, "usage: facelink reindex COLLECTION --model dlib|mobilefacenet "
                        "[--no-progress]" COMMON "\n");
        return 2;
    }
    svc = fl_cli_open(&o);
    if (!svc)
        return 1;
    req = json_pack("{s:s,s:s}", "CollectionId", o.pos[0], "FaceModel", o.model);
    resp = fl_cli_call(svc, "FaceLinkService.ReindexCollection", req);
    json_decref(req);
    if (!resp)
        goto out;
    snprintf(job_id, sizeof(job_id), "%s", json_string_value(json_object_get(resp, "JobId")));
    json_decref(resp);
    if (!o.no_progress)
        fprintf(stderr, "job %s\n", job_id);
    req = json_pack("{s:s}", "JobId", job_id);
    for (;;) {
        const char *status;
        double pct;
        resp = fl_cli_call(svc, "FaceLinkService.DescribeJob", req);
        if (!resp)
            break;
        status = json_string_value(json_object_get(resp, "Status"));
        pct = json_number_value(json_object_get(resp, "Progress"));
        if (!o.no_progress) {
            int bar = (int)(pct * 0.4 + 0.5);
            fprintf(stderr, "\r[%.*s%*s] %5.1f%% %-9s", bar,
                    "########################################", 40 - bar, "", pct,
                    status ? status : "?");
            fflush(stderr);
        }
        if (status && (strcmp(status, "SUCCEEDED") == 0 || strcmp(status, "FAILED") == 0)) {
            if (!o.no_progress)
                fprintf(stderr, "\n");
            rc = strcmp(status, "SUCCEEDED") == 0 ? 0 : 1;
            fl_cli_print(resp);
            break;
        }
        json_decref(resp);
        {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    json_decref(req);
out:
    fl_service_close(svc);
    return rc;
}

/* `facelink job JOBID`: DescribeJob (a reindex started by the server or by
 * an interrupted `facelink reindex`). */
int fl_cli_job(int argc, char **argv)
{
    struct fl_cli_opts o;
    if (fl_cli_parse(argc, argv, &o, 1) != 0 || o.n_pos != 1) {
        fprintf(stderr, "usage: facelink job JOBID" COMMON "\n");
        return 2;
    }
    return run_print(&o, "FaceLinkService.DescribeJob", json_pack("{s:s}", "JobId", o.pos[0]));
}
