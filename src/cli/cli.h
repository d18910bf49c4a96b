/*
 * cli.h: helpers shared by the facelink sub-commands (src/cli only). The CLI
 * uses the public API alone (facelink.h) plus jansson for JSON.
 */
#ifndef FL_CLI_H
#define FL_CLI_H

#include "facelink.h"

#include <jansson.h>
#include <stddef.h>

#define FL_CLI_MAX_POS 64

/* Options of the collection commands (cmd_owner.c, cmd_export.c). */
struct fl_cli_opts {
    const char *pos[FL_CLI_MAX_POS]; /* positional arguments */
    int n_pos;
    const char *models_dir, *data_dir; /* --models (models), --data-dir (data) */
    const char *threshold, *max_faces, *quality, *collection, *model;
    const char *endpoint, *images, *region, *access_key, *secret_key; /* migrate */
    int no_crops, no_progress;
};

/* Parse argv after the command name, at most max_pos positionals; 0 on
 * success, -1 on bad usage. */
int fl_cli_parse(int argc, char **argv, struct fl_cli_opts *o, int max_pos);
/* A service on o->data_dir / o->models_dir, or NULL (message printed). */
struct fl_service *fl_cli_open(const struct fl_cli_opts *o);
/* Call target with req (borrowed); the parsed answer, or NULL with the AWS
 * error name and message printed to stderr. */
json_t *fl_cli_call(struct fl_service *svc, const char *target, json_t *req);
/* Pretty-print resp (stolen) to stdout; 0, or 1 when resp is NULL. */
int fl_cli_print(json_t *resp);
/* req[name] = {"Bytes": base64(file at path)}; 0, or -1 (message printed). */
int fl_cli_add_image(json_t *req, const char *name, const char *path);

int fl_cli_embeddings(int argc, char **argv);
int fl_cli_search_vector(int argc, char **argv);
int fl_cli_search_all(int argc, char **argv);
int fl_cli_export(int argc, char **argv);
int fl_cli_import(int argc, char **argv);
int fl_cli_reindex(int argc, char **argv);
int fl_cli_job(int argc, char **argv);
int fl_cli_migrate(int argc, char **argv);

#endif /* FL_CLI_H */
