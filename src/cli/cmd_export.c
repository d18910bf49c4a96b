/*
 * cmd_export.c: `facelink export COLLECTION DIR` and `facelink import DIR
 * [--collection NAME]`, the command-line ends of FaceLinkService.
 * ExportCollection and ImportFaces on a local service (--data-dir, default
 * "data").
 *
 * export asks for the export (the files come back base64 in the answer,
 * docs/internals/api.md) and writes each file under DIR (crops/ included
 * unless --no-crops); import reads DIR's manifest.json, faces.jsonl,
 * users.jsonl, embeddings.npy and every crops/NAME.flc and sends them back. The
 * service checks everything (model, dimension, checksums) and imports all
 * or nothing; the command only moves bytes. Exit status: 0, 1 (operation or
 * file error, message on stderr), 2 (usage).
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FILE_MAX ((size_t)1 << 30)

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode standard padded base64 s into file f, through a stack buffer;
 * 0, or -1 when s is not base64 or the write fails. */
static int b64_write(const char *s, FILE *f)
{
    unsigned char buf[4096];
    size_t n = strlen(s), o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = s[i + k] == '=' ? 0 : b64v((unsigned char)s[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return -1;
        buf[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (s[i + 2] != '=')
            buf[o++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
        if (s[i + 3] != '=')
            buf[o++] = (unsigned char)(v[2] << 6 | v[3]);
        if (o > sizeof(buf) - 3) {
            if (fwrite(buf, 1, o, f) != o)
                return -1;
            o = 0;
        }
    }
    return o && fwrite(buf, 1, o, f) != o ? -1 : 0;
}

static int mkdir_one(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "facelink: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_file(const char *dir, const char *name, const char *b64)
{
    char path[4096];
    FILE *f;
    int ok;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    ok = f && b64_write(b64 ? b64 : "", f) == 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "facelink: cannot write %s (bad base64 from the service, or %s)\n", path,
                strerror(errno));
    return ok ? 0 : -1;
}

int fl_cli_export(int argc, char **argv)
{
    struct fl_cli_opts o;
    struct fl_service *svc;
    json_t *req, *resp;
    const char *name;
    json_t *v;
    char crops[4096];
    int rc = 1;
    if (fl_cli_parse(argc, argv, &o, 2) != 0 || o.n_pos != 2) {
        fprintf(stderr, "usage: facelink export COLLECTION DIR [--no-crops] [--data-dir DIR] "
                        "[--models DIR]\n");
        return 2;
    }
    svc = fl_cli_open(&o);
    if (!svc)
        return 1;
    req = json_pack("{s:s,s:b}", "CollectionId", o.pos[0], "IncludeCrops", !o.no_crops);
    resp = fl_cli_call(svc, "FaceLinkService.ExportCollection", req);
    json_decref(req);
    fl_service_close(svc);
    if (!resp)
        return 1;
    snprintf(crops, sizeof(crops), "%s/crops", o.pos[1]);
    if (mkdir_one(o.pos[1]) != 0)
        goto out;
    json_object_foreach(json_object_get(resp, "Files"), name, v)
    {
        if (strncmp(name, "crops/", 6) == 0 && mkdir_one(crops) != 0)
            goto out;
        if (write_file(o.pos[1], name, json_string_value(v)) != 0)
            goto out;
    }
    {
        json_t *counts = json_object_get(json_object_get(resp, "Manifest"), "Counts");
        printf("exported %s: %lld faces, %lld users, %lld crops to %s\n", o.pos[0],
               (long long)json_integer_value(json_object_get(counts, "Faces")),
               (long long)json_integer_value(json_object_get(counts, "Users")),
               (long long)json_integer_value(json_object_get(counts, "Crops")), o.pos[1]);
    }
    rc = 0;
out:
    json_decref(resp);
    return rc;
}

/* files[name] = base64(DIR/name); missing optional files are skipped. */
static int add_file(json_t *files, const char *dir, const char *name, int required)
{
    char path[4096], *bytes = NULL, *b64;
    size_t n = 0;
    struct fl_err err;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (fl_read_file(path, FILE_MAX, &bytes, &n, &err) != FL_OK) {
        if (!required)
            return 0;
        fprintf(stderr, "facelink: %s\n", err.msg);
        return -1;
    }
    b64 = fl_base64(bytes, n);
    fl_free_string(bytes);
    if (!b64) {
        fprintf(stderr, "facelink: out of memory\n");
        return -1;
    }
    json_object_set_new(files, name, json_string(b64));
    fl_free_string(b64);
    return 0;
}

int fl_cli_import(int argc, char **argv)
{
    struct fl_cli_opts o;
    struct fl_service *svc;
    json_t *req, *files;
    char crops[4096];
    DIR *d;
    int rc = 1;
    if (fl_cli_parse(argc, argv, &o, 1) != 0 || o.n_pos != 1) {
        fprintf(stderr, "usage: facelink import DIR [--collection NAME] [--data-dir DIR] "
                        "[--models DIR]\n");
        return 2;
    }
    files = json_object();
    req = json_object();
    json_object_set_new(req, "Files", files);
    if (o.collection)
        json_object_set_new(req, "CollectionId", json_string(o.collection));
    if (add_file(files, o.pos[0], "manifest.json", 1) != 0 ||
        add_file(files, o.pos[0], "faces.jsonl", 1) != 0 ||
        add_file(files, o.pos[0], "users.jsonl", 0) != 0 ||
        add_file(files, o.pos[0], "embeddings.npy", 0) != 0)
        goto out;
    snprintf(crops, sizeof(crops), "%s/crops", o.pos[0]);
    d = opendir(crops);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char name[512];
            size_t len = strlen(e->d_name);
            if (len < 5 || strcmp(e->d_name + len - 4, ".flc") != 0)
                continue;
            snprintf(name, sizeof(name), "crops/%s", e->d_name);
            if (add_file(files, o.pos[0], name, 1) != 0) {
                closedir(d);
                goto out;
            }
        }
        closedir(d);
    }
    svc = fl_cli_open(&o);
    if (!svc)
        goto out;
    rc = fl_cli_print(fl_cli_call(svc, "FaceLinkService.ImportFaces", req));
    fl_service_close(svc);
out:
    json_decref(req);
    return rc;
}
