/*
 * main.c: the `facelink` command. It dispatches to one function per
 * sub-command and uses only the public API (include/facelink.h), as curl's
 * tool uses only libcurl.
 */
#include "cli.h"
#include "facelink.h"

#include "cmd_eval.h"

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("facelink %s\n", fl_version());
    return 0;
}

int fl_cli_serve(int argc, char **argv);   /* cmd_serve.c */
int fl_cli_detect(int argc, char **argv);  /* cmd_face.c */
int fl_cli_embed(int argc, char **argv);   /* cmd_face.c */
int fl_cli_compare(int argc, char **argv); /* cmd_face.c */
int fl_cli_models(int argc, char **argv);  /* cmd_models.c */

static const struct command commands[] = {
    {"version", cmd_version, "print the version"},
    {"serve", fl_cli_serve, "run the HTTP server (Rekognition API)"},
    {"detect", fl_cli_detect, "detect faces in an image (DetectFaces JSON)"},
    {"embed", fl_cli_embed, "faces of an image with their embeddings (EmbedFaces JSON)"},
    {"compare", fl_cli_compare, "compare the largest face of one image with another's (CompareFaces JSON)"},
    {"models", fl_cli_models, "models convert: convert the nets once into .flm files"},
    {"embeddings", fl_cli_embeddings, "stored vectors of faces (GetFaceEmbeddings JSON)"},
    {"search-vector", fl_cli_search_vector, "search a collection with a vector (SearchFacesByEmbedding)"},
    {"search-all", fl_cli_search_all, "search every face of an image (SearchAllFacesByImage)"},
    {"export", fl_cli_export, "write a collection's faces, vectors, users and crops to a directory"},
    {"import", fl_cli_import, "import an export directory (ImportFaces; all or nothing)"},
    {"reindex", fl_cli_reindex, "re-embed a collection with another model from its crops"},
    {"job", fl_cli_job, "state and progress of a background job (DescribeJob)"},
    {"migrate", fl_cli_migrate, "rebuild a collection of another Rekognition-compatible service here"},
    {"eval", fl_cli_eval, "measure accuracy: LFW verification, detection, calibration"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: facelink COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'facelink COMMAND --help' shows a command's options.\n");
}

int main(int argc, char **argv)
{
    fl_init();
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "facelink: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
