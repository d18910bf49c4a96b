/*
 * cmd_export.c: `facelink export COLLECTION DIR` and `facelink import DIR
 * [--collection NAME]`, the command-line ends of FaceLinkService.
 * ExportCollection and the staged import on a local service (--data-dir,
 * default "data"), for collections of any size in bounded memory.
 *
 * export asks for the export a page at a time (MaxResults/NextToken,
 * docs/internals/api.md) and streams each page into DIR: the parts of
 * faces.jsonl, embeddings.npy, users.jsonl and pgvector.sql are appended to
 * their files, crops/<FaceId>.flc are written whole (unless --no-crops). The
 * last page brings the header of embeddings.npy with the final row count,
 * written over the placeholder the first page put at offset 0 (same length),
 * and the manifest as exact JSON text; the command adds the size and
 * SHA-256 of each file it wrote and writes manifest.json LAST (through a
 * temporary name): a directory without manifest.json is an unfinished
 * export, and import refuses it.
 *
 * import first checks DIR without the service: every file manifest.json
 * lists must have its size and SHA-256, and embeddings.npy (when present)
 * must hold exactly the vectors of faces.jsonl, in order. Then it opens a
 * staged import (StartImport with manifest.json: the service checks the
 * model and dimension before anything is written), sends faces.jsonl and
 * users.jsonl in pages (ImportFaces {ImportId, Files}, each page at most
 * FACELINK_PAGE_SIZE faces and about PAGE_BYTES bytes with the crops its
 * lines name), and commits (CommitImport): the faces appear all at once or
 * not at all. On any failure it aborts the import (AbortImport); an import
 * left open by a killed process changes nothing and expires on the service.
 *
 * Memory: one page (about PAGE_BYTES of files, plus the JSON around them)
 * at a time on both sides, whatever the collection's size.
 *
 * FACELINK_PAGE_SIZE (1..4096, default 1000) sets records per page for both
 * commands (tests use small pages to exercise paging on small collections).
 *
 * Exit status: 0, 1 (operation or file error, message on stderr), 2 (usage).
 */
#include "cli.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX   ((size_t)16 << 20)
#define CROP_MAX       ((size_t)16 << 20)
#define PAGE_BYTES     ((size_t)6 << 20) /* raw bytes per import page: base64 stays < 16 MiB */
#define MAN_DUMP       (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17))
#define LINE_MAX_BYTES ((size_t)64 << 10) /* a faces.jsonl line (4096-d: ~22 kB) */
#define TOKEN_MAX      1024               /* ExportCollection's NextToken */

/* The streamed files of an export, in the order manifest.json lists them. */
static const char *const k_parts[4] = {"faces.jsonl", "embeddings.npy", "users.jsonl",
                                       "pgvector.sql"};

static size_t page_size(void)
{
    const char *s = getenv("FACELINK_PAGE_SIZE");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v >= 1 && v <= 4096 ? (size_t)v : 1000;
}

/* ============================== base64 ============================== */

/* Decode base64 s into file f through a stack buffer; 0, or -1 when s is
 * not base64 or the write fails. */
static int b64_write(const char *s, FILE *f)
{
    unsigned char buf[3 * 1024];
    size_t n = strlen(s);
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4096) {
        size_t chunk = n - i < 4096 ? n - i : 4096;
        size_t got = 0;
        if (fl_unbase64(s + i, chunk, buf, &got, NULL) != FL_OK ||
            (got && fwrite(buf, 1, got, f) != got))
            return -1;
    }
    return 0;
}

/* ============================== Files ============================== */

static int mkdir_one(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "facelink: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Size and SHA-256 (hex) of a file, read in 64 KiB pieces; 0 or -1. */
static int file_digest(const char *path, long long *size, char hex[65])
{
    unsigned char buf[65536], md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    FILE *f = fopen(path, "rb");
    long long total = 0;
    int ok = f && x && EVP_DigestInit_ex(x, EVP_sha256(), NULL) == 1;
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
        ok = EVP_DigestUpdate(x, buf, n) == 1;
        total += (long long)n;
    }
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(x, md, &mdlen) == 1 && mdlen == 32;
    if (ok) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        *size = total;
    }
    if (f)
        fclose(f);
    EVP_MD_CTX_free(x);
    return ok ? 0 : -1;
}

/* A crop file name as the service gives it: crops/<safe name>. */
static int crop_name_ok(const char *name)
{
    if (strncmp(name, "crops/", 6) != 0 || !name[6] || strstr(name, ".."))
        return 0;
    for (const char *p = name + 6; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* ============================== export ============================== */

struct exp_state {
    const char *dir;
    FILE *part[4];
    int crops_dir;
    long long faces, users;
};

/* Write one page of the answer into the files. */
static int write_page(struct exp_state *s, json_t *resp)
{
    json_t *append = json_object_get(resp, "Append"), *v;
    const char *name;
    json_object_foreach(append, name, v)
    {
        int i;
        for (i = 0; i < 4 && strcmp(name, k_parts[i]) != 0; i++)
            ;
        if (i == 4 || !json_is_string(v) || b64_write(json_string_value(v), s->part[i]) != 0) {
            fprintf(stderr, "facelink: cannot append to %s/%s (bad answer, or %s)\n", s->dir, name,
                    strerror(errno));
            return -1;
        }
    }
    json_object_foreach(json_object_get(resp, "Files"), name, v)
    {
        char path[4096];
        FILE *f;
        int ok;
        if (!crop_name_ok(name) || !json_is_string(v)) {
            fprintf(stderr, "facelink: unexpected file %s in the answer\n", name);
            return -1;
        }
        if (!s->crops_dir) {
            snprintf(path, sizeof(path), "%s/crops", s->dir);
            if (mkdir_one(path) != 0)
                return -1;
            s->crops_dir = 1;
        }
        snprintf(path, sizeof(path), "%s/%s", s->dir, name);
        f = fopen(path, "wb");
        ok = f && b64_write(json_string_value(v), f) == 0;
        if (f && fclose(f) != 0)
            ok = 0;
        if (!ok) {
            fprintf(stderr, "facelink: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    s->faces += (long long)json_integer_value(json_object_get(resp, "FacesInPage"));
    s->users += (long long)json_integer_value(json_object_get(resp, "UsersInPage"));
    return 0;
}

/* The last page's Patch: bytes written over a file at an offset. */
static int apply_patches(struct exp_state *s, const json_t *patch)
{
    size_t i;
    json_t *p;
    json_array_foreach(patch, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "File"));
        const char *bytes = json_string_value(json_object_get(p, "Bytes"));
        long long off = json_integer_value(json_object_get(p, "Offset"));
        int k;
        for (k = 0; k < 4 && name && strcmp(name, k_parts[k]) != 0; k++)
            ;
        if (!name || k == 4 || !bytes || off < 0 || fflush(s->part[k]) != 0 ||
            fseek(s->part[k], (long)off, SEEK_SET) != 0 || b64_write(bytes, s->part[k]) != 0 ||
            fseek(s->part[k], 0, SEEK_END) != 0) {
            fprintf(stderr, "facelink: cannot apply the answer's patch to %s\n", name ? name : "?");
            return -1;
        }
    }
    return 0;
}

/* manifest.json = the service's text + "Files" (size, SHA-256 of each part). */
static int write_manifest(const char *dir, const char *text)
{
    char path[4096], tmp[4096], hex[65];
    json_t *man = json_loads(text, JSON_DECODE_ANY, NULL), *files = json_object();
    char *out = NULL;
    FILE *f = NULL;
    int rc = -1;
    if (!json_is_object(man) || !files) {
        fprintf(stderr, "facelink: the service sent no readable manifest\n");
        goto out;
    }
    for (int i = 0; i < 4; i++) {
        long long size = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, k_parts[i]);
        if (file_digest(path, &size, hex) != 0) {
            fprintf(stderr, "facelink: cannot read back %s\n", path);
            goto out;
        }
        json_object_set_new(files, k_parts[i],
                            json_pack("{s:I,s:s}", "Bytes", (json_int_t)size, "Sha256", hex));
    }
    json_object_set(man, "Files", files);
    out = json_dumps(man, MAN_DUMP);
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    snprintf(tmp, sizeof(tmp), "%s/manifest.json.tmp", dir);
    f = out ? fopen(tmp, "wb") : NULL;
    if (!f || fwrite(out, 1, strlen(out), f) != strlen(out) || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        fprintf(stderr, "facelink: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        f = NULL;
        fprintf(stderr, "facelink: cannot write %s: %s\n", path, strerror(errno));
        goto out;
    }
    f = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    fl_free_string(out);
    json_decref(files);
    json_decref(man);
    return rc;
}

int fl_cli_export(int argc, char **argv)
{
    struct fl_cli_opts o;
    struct fl_service *svc;
    struct exp_state s;
    json_t *resp = NULL;
    const char *man_text = NULL;
    char token[TOKEN_MAX + 1] = "", path[4096];
    int rc = 1, tty = isatty(2);
    size_t page = page_size();
    if (fl_cli_parse(argc, argv, &o, 2) != 0 || o.n_pos != 2) {
        fprintf(stderr, "usage: facelink export COLLECTION DIR [--no-crops] [--no-progress] "
                        "[--data-dir DIR] [--models DIR]\n");
        return 2;
    }
    memset(&s, 0, sizeof(s));
    s.dir = o.pos[1];
    if (mkdir_one(s.dir) != 0)
        return 1;
    /* an older export's manifest would vouch for files being replaced */
    snprintf(path, sizeof(path), "%s/manifest.json", s.dir);
    if (unlink(path) != 0 && errno != ENOENT) {
        fprintf(stderr, "facelink: cannot remove %s: %s\n", path, strerror(errno));
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", s.dir, k_parts[i]);
        s.part[i] = fopen(path, "w+b");
        if (!s.part[i]) {
            fprintf(stderr, "facelink: cannot create %s: %s\n", path, strerror(errno));
            goto close;
        }
    }
    svc = fl_cli_open(&o);
    if (!svc)
        goto close;
    for (;;) {
        json_t *req = json_pack("{s:s,s:b,s:I}", "CollectionId", o.pos[0], "IncludeCrops",
                                !o.no_crops, "MaxResults", (json_int_t)page);
        const char *next;
        if (token[0])
            json_object_set_new(req, "NextToken", json_string(token));
        resp = fl_cli_call(svc, "FaceLinkService.ExportCollection", req);
        json_decref(req);
        if (!resp || write_page(&s, resp) != 0)
            break;
        if (tty && !o.no_progress)
            fprintf(stderr, "\rexporting %s: %lld faces, %lld users", o.pos[0], s.faces, s.users);
        next = json_string_value(json_object_get(resp, "NextToken"));
        if (next && strlen(next) > TOKEN_MAX) {
            fprintf(stderr, "facelink: the service sent an overlong NextToken\n");
            break;
        }
        if (!next) {
            /* the last page: resp stays alive for its manifest */
            if (apply_patches(&s, json_object_get(resp, "Patch")) == 0)
                man_text = json_string_value(json_object_get(resp, "ManifestJson"));
            if (!man_text)
                fprintf(stderr, "facelink: the last page carries no usable manifest\n");
            break;
        }
        snprintf(token, sizeof(token), "%s", next);
        json_decref(resp);
        resp = NULL;
    }
    if (tty && !o.no_progress)
        fprintf(stderr, "\n");
    fl_service_close(svc);
close:
    for (int i = 0; i < 4; i++)
        if (s.part[i] && fclose(s.part[i]) != 0) {
            fprintf(stderr, "facelink: cannot write %s/%s: %s\n", s.dir, k_parts[i],
                    strerror(errno));
            man_text = NULL;
        }
    if (man_text && write_manifest(s.dir, man_text) == 0) {
        json_t *man = json_object_get(resp, "Manifest");
        json_t *counts = json_object_get(man, "Counts"), *snap = json_object_get(man, "Snapshot");
        printf("exported %s: %lld faces, %lld users, %lld crops to %s\n", o.pos[0],
               (long long)json_integer_value(json_object_get(counts, "Faces")),
               (long long)json_integer_value(json_object_get(counts, "Users")),
               (long long)json_integer_value(json_object_get(counts, "Crops")), s.dir);
        if (!json_is_true(json_object_get(snap, "PointInTime")))
            fprintf(stderr,
                    "facelink: note: the collection changed during the export (faces deleted "
                    "or re-associated, users changed); each face is as it was when its page "
                    "was read. Export again at a quiet time for a point-in-time copy.\n");
        rc = 0;
    }
    json_decref(resp);
    return rc;
}

/* ============================== import ============================== */

/* The lines of the page being filled: a static buffer (the CLI has no
 * allocator of its own; it uses the public API only), PAGE_BYTES plus one
 * line, whatever the collection's size. */
static char g_page[PAGE_BYTES + LINE_MAX_BYTES];
static char g_line[LINE_MAX_BYTES];

/* Read one line (with its newline) into g_line; its length, 0 at the end,
 * -1 when longer than LINE_MAX_BYTES - 1 (message printed). */
static long read_line(FILE *f, const char *path)
{
    size_t n;
    if (!fgets(g_line, sizeof(g_line), f))
        return 0;
    n = strlen(g_line);
    if (n == sizeof(g_line) - 1 && g_line[n - 1] != '\n') {
        fprintf(stderr, "facelink: %s has a line longer than %zu bytes\n", path,
                sizeof(g_line) - 1);
        return -1;
    }
    return (long)n;
}

/* Every file manifest.json lists has its size and SHA-256. */
static int check_files(const char *dir, const json_t *man)
{
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(man, "Files"), name, v)
    {
        char path[4096], hex[65];
        long long size = -1;
        const char *want = json_string_value(json_object_get(v, "Sha256"));
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        if (strstr(name, "..") || file_digest(path, &size, hex) != 0) {
            fprintf(stderr, "facelink: cannot read %s, which manifest.json lists\n", path);
            return -1;
        }
        if (!want || strcmp(want, hex) != 0 ||
            size != (long long)json_integer_value(json_object_get(v, "Bytes"))) {
            fprintf(stderr,
                    "facelink: %s does not match the size or sha256 in manifest.json; "
                    "nothing was imported\n",
                    path);
            return -1;
        }
    }
    return 0;
}

/* embeddings.npy, when present, holds exactly the Embedding of every
 * faces.jsonl line, in order (dim floats each). */
static int check_npy(const char *dir, long long dim)
{
    char path[4096];
    unsigned char pre[10], row[4 * 4096], dec[4 * 4096 + 4];
    FILE *npy, *faces = NULL;
    long long n = 0;
    long len = 0;
    int ok = 1;
    snprintf(path, sizeof(path), "%s/embeddings.npy", dir);
    npy = fopen(path, "rb");
    if (!npy)
        return 0; /* optional */
    if (dim <= 0 || dim > 4096 || fread(pre, 1, 10, npy) != 10 ||
        memcmp(pre, "\x93NUMPY\x01\x00", 8) != 0 ||
        fseek(npy, 10 + (long)(pre[8] | pre[9] << 8), SEEK_SET) != 0)
        ok = 0;
    snprintf(path, sizeof(path), "%s/faces.jsonl", dir);
    faces = ok ? fopen(path, "rb") : NULL;
    ok = ok && faces;
    while (ok && (len = read_line(faces, path)) > 0) {
        json_t *o = json_loadb(g_line, (size_t)len, 0, NULL);
        const char *e = json_string_value(json_object_get(o, "Embedding"));
        size_t got = 0;
        ok = e && strlen(e) <= 4 * 4096 / 3 * 4 + 4 &&
             fl_unbase64(e, strlen(e), dec, &got, NULL) == FL_OK && got == (size_t)(4 * dim) &&
             fread(row, 1, (size_t)(4 * dim), npy) == (size_t)(4 * dim) &&
             memcmp(row, dec, (size_t)(4 * dim)) == 0;
        json_decref(o);
        n++;
    }
    if (len < 0)
        ok = 0;
    if (ok && fgetc(npy) != EOF)
        ok = 0; /* rows beyond faces.jsonl */
    if (!ok)
        fprintf(stderr,
                "facelink: embeddings.npy does not hold the vectors of faces.jsonl (row %lld); "
                "nothing was imported\n",
                n);
    if (faces)
        fclose(faces);
    fclose(npy);
    return ok ? 0 : -1;
}

struct imp_state {
    struct fl_service *svc;
    const char *dir;
    char import_id[80];
    size_t len;    /* bytes of g_page used */
    json_t *files; /* the page's crops */
    size_t n, bytes;
    long long faces, users;
};

/* Send the page in s (part = "faces.jsonl" or "users.jsonl"); 0 or -1. */
static int send_page(struct imp_state *s, const char *part)
{
    json_t *req, *resp;
    char *b64;
    if (s->n == 0)
        return 0;
    b64 = fl_base64(g_page, s->len);
    if (!b64) {
        fprintf(stderr, "facelink: out of memory\n");
        return -1;
    }
    json_object_set_new(s->files, part, json_string(b64));
    fl_free_string(b64);
    req = json_pack("{s:s,s:O}", "ImportId", s->import_id, "Files", s->files);
    resp = fl_cli_call(s->svc, "FaceLinkService.ImportFaces", req);
    json_decref(req);
    if (!resp)
        return -1;
    s->faces += (long long)json_integer_value(json_object_get(resp, "FacesInPage"));
    s->users += (long long)json_integer_value(json_object_get(resp, "UsersInPage"));
    json_decref(resp);
    json_object_clear(s->files);
    s->len = 0;
    s->n = s->bytes = 0;
    return 0;
}

/* Stream one .jsonl file into pages (with the crops faces.jsonl lines name). */
static int send_file(struct imp_state *s, const char *part, size_t page, int tty)
{
    char path[4096];
    long len = 0;
    FILE *f;
    int rc = 0;
    snprintf(path, sizeof(path), "%s/%s", s->dir, part);
    f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT && strcmp(part, "users.jsonl") == 0)
            return 0;
        fprintf(stderr, "facelink: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (len = read_line(f, path)) > 0) {
        json_t *o = NULL;
        const char *crop = NULL;
        char *bytes = NULL;
        size_t n = 0;
        if (strcmp(part, "faces.jsonl") == 0) {
            o = json_loadb(g_line, (size_t)len, 0, NULL);
            crop = json_string_value(json_object_get(o, "Crop"));
        }
        if (crop) {
            char cpath[4096];
            struct fl_err err;
            snprintf(cpath, sizeof(cpath), "%s/%s", s->dir, crop);
            if (!crop_name_ok(crop)) {
                fprintf(stderr, "facelink: %s names a bad crop file %s\n", path, crop);
                rc = -1;
            } else if (fl_read_file(cpath, CROP_MAX, &bytes, &n, &err) != FL_OK) {
                if (err.code != FL_ERR_NOT_FOUND) {
                    fprintf(stderr, "facelink: %s\n", err.msg);
                    rc = -1;
                }
                n = 0; /* exported without crops/: the face comes without one */
            }
        }
        if (rc == 0 && s->n &&
            (s->n >= page || s->bytes + (size_t)len + n > PAGE_BYTES ||
             s->len + (size_t)len > PAGE_BYTES)) {
            rc = send_page(s, part);
            if (tty && rc == 0)
                fprintf(stderr, "\rimporting: %lld faces, %lld users staged", s->faces, s->users);
        }
        if (rc == 0 && bytes) {
            char *b64 = fl_base64(bytes, n);
            if (!b64 || json_object_set_new(s->files, crop, json_string(b64)) != 0) {
                fprintf(stderr, "facelink: out of memory\n");
                rc = -1;
            }
            fl_free_string(b64);
        }
        if (rc == 0) {
            memcpy(g_page + s->len, g_line, (size_t)len); /* fits: len <= LINE_MAX_BYTES */
            s->len += (size_t)len;
        }
        s->n++;
        s->bytes += (size_t)len + n;
        fl_free_string(bytes);
        json_decref(o);
    }
    if (len < 0)
        rc = -1;
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "facelink: cannot read %s\n", path);
        rc = -1;
    }
    if (rc == 0)
        rc = send_page(s, part);
    fclose(f);
    return rc;
}

int fl_cli_import(int argc, char **argv)
{
    struct fl_cli_opts o;
    struct imp_state s;
    char path[4096], *man_bytes = NULL, *b64 = NULL;
    size_t man_n = 0;
    json_t *man = NULL, *req, *resp;
    struct fl_err err;
    int rc = 1, tty = isatty(2), opened = 0;
    if (fl_cli_parse(argc, argv, &o, 1) != 0 || o.n_pos != 1) {
        fprintf(stderr, "usage: facelink import DIR [--collection NAME] [--no-progress] "
                        "[--data-dir DIR] [--models DIR]\n");
        return 2;
    }
    memset(&s, 0, sizeof(s));
    s.dir = o.pos[0];
    tty = tty && !o.no_progress;
    snprintf(path, sizeof(path), "%s/manifest.json", s.dir);
    if (fl_read_file(path, MANIFEST_MAX, &man_bytes, &man_n, &err) != FL_OK) {
        fprintf(stderr, "facelink: %s (an export is complete once manifest.json is written)\n",
                err.msg);
        return 1;
    }
    man = json_loadb(man_bytes, man_n, 0, NULL);
    if (!json_is_object(man)) {
        fprintf(stderr, "facelink: %s is not a JSON object\n", path);
        goto out;
    }
    /* everything that can be checked here, before the service sees anything */
    if (check_files(s.dir, man) != 0 ||
        check_npy(s.dir, json_integer_value(
                             json_object_get(json_object_get(man, "FaceModel"), "Dimension"))) != 0)
        goto out;
    s.svc = fl_cli_open(&o);
    if (!s.svc)
        goto out;
    b64 = fl_base64(man_bytes, man_n);
    req = json_pack("{s:{s:s}}", "Files", "manifest.json", b64 ? b64 : "");
    if (o.collection)
        json_object_set_new(req, "CollectionId", json_string(o.collection));
    resp = fl_cli_call(s.svc, "FaceLinkService.StartImport", req);
    json_decref(req);
    if (!resp)
        goto close;
    snprintf(s.import_id, sizeof(s.import_id), "%s",
             json_string_value(json_object_get(resp, "ImportId"))
                 ? json_string_value(json_object_get(resp, "ImportId"))
                 : "");
    json_decref(resp);
    if (!s.import_id[0])
        goto close;
    opened = 1;
    s.files = json_object();
    if (send_file(&s, "faces.jsonl", page_size(), tty) != 0 ||
        send_file(&s, "users.jsonl", page_size(), tty) != 0)
        goto close;
    if (tty)
        fprintf(stderr, "\rimporting: %lld faces, %lld users staged; committing\n", s.faces,
                s.users);
    req = json_pack("{s:s}", "ImportId", s.import_id);
    resp = fl_cli_call(s.svc, "FaceLinkService.CommitImport", req);
    json_decref(req);
    if (resp) {
        opened = 0;
        rc = fl_cli_print(resp);
    }
close:
    if (opened) {
        req = json_pack("{s:s}", "ImportId", s.import_id);
        json_decref(fl_cli_call(s.svc, "FaceLinkService.AbortImport", req));
        json_decref(req);
        fprintf(stderr, "facelink: import %s aborted; nothing was imported\n", s.import_id);
    }
    fl_service_close(s.svc);
out:
    json_decref(s.files);
    fl_free_string(b64);
    fl_free_string(man_bytes);
    json_decref(man);
    return rc;
}
