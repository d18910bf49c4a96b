/*
 * cmd_migrate.c: `facelink migrate --from-endpoint URL --collection NAME
 * --images DIR`: rebuild a collection of any Rekognition-compatible service
 * (Amazon Rekognition behind a local HTTP proxy, another FaceLink, ...) here,
 * from the owner's original photos.
 *
 * Embeddings cannot be moved between services (AWS never reveals them, and
 * another model's vectors mean nothing to ours), but the structure can:
 *
 *   1. the remote collection is read with ListFaces and ListUsers, following
 *      NextToken (AWS JSON 1.1 over HTTP, SigV4-signed with --access-key /
 *      --secret-key / --region, or the AWS_ACCESS_KEY_ID,
 *      AWS_SECRET_ACCESS_KEY and AWS_REGION environment variables);
 *   2. faces are grouped by ExternalImageId; each group's photo is looked for
 *      in DIR (a file named exactly so, or with .jpg/.jpeg/.png/.webp added,
 *      anywhere below DIR);
 *   3. each photo is indexed here (IndexFaces with the same ExternalImageId,
 *      QualityFilter NONE) and every remote face is matched to the local face
 *      whose box overlaps it most (intersection over union >= MIN_IOU,
 *      greedily, best pairs first); local faces the remote collection did not
 *      have are deleted again, so the collection holds the same faces;
 *   4. users are created and associated with the matched faces
 *      (UserMatchThreshold 0: the owner's associations are kept as they were,
 *      not re-judged by our model).
 *
 * The report (JSON on stdout) maps every remote FaceId to its new FaceId and
 * lists the faces that could not be matched, with the reason (no photo, photo
 * unreadable, no face at that place). FaceIds are new: IndexFaces assigns
 * them, and the crops it keeps make the collection re-indexable here.
 *
 * The HTTP client is minimal: http:// only (put a TLS-terminating proxy in
 * front of an https endpoint), one request per connection, Content-Length,
 * chunked or read-to-close answers streamed into jansson (no buffer of our
 * own: the CLI has no allocator but the library's strings). SigV4 is computed with OpenSSL's
 * SHA-256 and HMAC (the CLI links libcrypto like the library).
 *
 * Exit status: 0 (even with unmatched faces: they are in the report), 1 on
 * errors, 2 on bad usage.
 */
#include "cli.h"

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIN_IOU   0.3
#define IMAGE_MAX ((size_t)5 << 20)

/* ============================== SigV4 ============================== */

static void hex(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char h[32];
    SHA256(p, n, h);
    hex(h, 32, out);
}

static void hmac(const void *key, size_t key_len, const char *msg, unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len);
}

struct endpoint {
    char host[256];    /* as in the Host header (with :port when not 80) */
    char connect[256]; /* host name to resolve */
    char port[16];
    char path[1024]; /* "/" or the URL's path */
    const char *region, *access_key, *secret_key;
};

static int parse_url(const char *url, struct endpoint *e)
{
    const char *p, *slash, *colon;
    size_t hl;
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "facelink: --from-endpoint must be an http:// URL (https: put a TLS "
                        "proxy in front)\n");
        return -1;
    }
    p = url + 7;
    slash = strchr(p, '/');
    hl = slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || hl >= sizeof(e->host))
        return -1;
    memcpy(e->host, p, hl);
    e->host[hl] = '\0';
    snprintf(e->path, sizeof(e->path), "%s", slash ? slash : "/");
    colon = strrchr(e->host, ':');
    if (colon && !strchr(colon, ']')) {
        snprintf(e->connect, sizeof(e->connect), "%.*s", (int)(colon - e->host), e->host);
        snprintf(e->port, sizeof(e->port), "%s", colon + 1);
    } else {
        snprintf(e->connect, sizeof(e->connect), "%s", e->host);
        snprintf(e->port, sizeof(e->port), "80");
    }
    if (e->connect[0] == '[') { /* [v6] */
        size_t n = strlen(e->connect);
        memmove(e->connect, e->connect + 1, n);
        if (n >= 2)
            e->connect[n - 2] = '\0';
    }
    return 0;
}

/* The Authorization header value for a POST of body with these headers. */
static void sign(const struct endpoint *e, const char *target, const char *amz_date,
                 const char *body, size_t body_len, char *out, size_t cap)
{
    char date[9], body_hash[65], creq_hash[65], sig[65], scope[128], creq[4096], sts[512];
    unsigned char k[32], k2[32];
    char secret[512];
    memcpy(date, amz_date, 8);
    date[8] = '\0';
    sha256_hex(body, body_len, body_hash);
    /* path <= 1023, host <= 255, target <= 127: the canonical request fits */
    snprintf(creq, sizeof(creq),
             "POST\n%s\n\ncontent-type:application/x-amz-json-1.1\nhost:%s\nx-amz-date:%s\n"
             "x-amz-target:%s\n\ncontent-type;host;x-amz-date;x-amz-target\n%s",
             e->path, e->host, amz_date, target, body_hash);
    sha256_hex(creq, strlen(creq), creq_hash);
    snprintf(scope, sizeof(scope), "%s/%s/rekognition/aws4_request", date, e->region);
    snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, creq_hash);
    snprintf(secret, sizeof(secret), "AWS4%s", e->secret_key);
    hmac(secret, strlen(secret), date, k);
    hmac(k, 32, e->region, k2);
    hmac(k2, 32, "rekognition", k);
    hmac(k, 32, "aws4_request", k2);
    hmac(k2, 32, sts, k);
    hex(k, 32, sig);
    snprintf(out, cap,
             "AWS4-HMAC-SHA256 Credential=%s/%s, "
             "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s",
             e->access_key, scope, sig);
}

/* ============================== HTTP ============================== */

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The body reader jansson pulls from: Content-Length bytes, chunked
 * transfer coding, or everything up to the end of the connection. */
struct body_reader {
    FILE *f;
    bool chunked;
    long long left; /* bytes left in the body or the current chunk; -1: until EOF */
    bool done;
};

static size_t body_read(void *buf, size_t cap, void *ud)
{
    struct body_reader *b = ud;
    size_t want, got;
    if (b->done)
        return 0;
    if (b->chunked && b->left == 0) {
        char line[64];
        if (!fgets(line, sizeof(line), b->f))
            return (size_t)-1;
        b->left = strtoll(line, NULL, 16);
        if (b->left <= 0) {
            b->done = true;
            return 0;
        }
    }
    want = b->left < 0 || (unsigned long long)b->left > cap ? cap : (size_t)b->left;
    got = fread(buf, 1, want, b->f);
    if (got == 0) {
        b->done = true;
        return b->left < 0 ? 0 : (size_t)-1;
    }
    if (b->left > 0)
        b->left -= (long long)got;
    if (b->chunked && b->left == 0) {
        char crlf[4];
        if (!fgets(crlf, sizeof(crlf), b->f)) /* the CRLF after the chunk */
            return (size_t)-1;
    } else if (!b->chunked && b->left == 0) {
        b->done = true;
    }
    return got;
}

/* POST an AWS JSON 1.1 request; the parsed answer, or NULL with the error
 * printed. */
static json_t *remote_call(const struct endpoint *e, const char *op, json_t *req)
{
    char target[128], amz_date[32], auth[512], head[4096], line[8192], *body;
    size_t body_len;
    struct addrinfo hints, *ai = NULL, *a;
    struct body_reader br = {0};
    int fd = -1, status = 0;
    time_t now = time(NULL);
    struct tm tm;
    json_t *out = NULL;
    json_error_t je;
    FILE *f = NULL;

    snprintf(target, sizeof(target), "RekognitionService.%s", op);
    body = json_dumps(req, JSON_COMPACT);
    if (!body)
        return NULL;
    body_len = strlen(body);
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    if (e->access_key && e->secret_key) {
        sign(e, target, amz_date, body, body_len, auth, sizeof(auth));
        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                 "X-Amz-Date: %s\r\nX-Amz-Target: %s\r\nAuthorization: %s\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 e->path, e->host, amz_date, target, auth, body_len);
    } else {
        snprintf(head, sizeof(head),
                 "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                 "X-Amz-Target: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 e->path, e->host, target, body_len);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(e->connect, e->port, &hints, &ai) != 0) {
        fprintf(stderr, "facelink: cannot resolve %s\n", e->connect);
        goto out;
    }
    for (a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (fd < 0) {
        fprintf(stderr, "facelink: cannot connect to %s:%s: %s\n", e->connect, e->port,
                strerror(errno));
        goto out;
    }
    if (send_all(fd, head, strlen(head)) != 0 || send_all(fd, body, body_len) != 0) {
        fprintf(stderr, "facelink: sending to %s failed\n", e->host);
        goto out;
    }
    f = fdopen(fd, "rb");
    if (!f)
        goto out;
    fd = -1; /* closed with f */
    if (!fgets(line, sizeof(line), f) || sscanf(line, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "facelink: no HTTP answer from %s\n", e->host);
        goto out;
    }
    br.f = f;
    br.left = -1;
    while (fgets(line, sizeof(line), f) && strcmp(line, "\r\n") != 0 && strcmp(line, "\n") != 0) {
        if (strncasecmp(line, "Content-Length:", 15) == 0)
            br.left = strtoll(line + 15, NULL, 10);
        else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strstr(line, "chunked"))
            br.chunked = true;
    }
    if (br.chunked)
        br.left = 0;
    out = json_load_callback(body_read, &br, 0, &je);
    if (status != 200 || !out) {
        const char *type = json_string_value(json_object_get(out, "__type"));
        const char *msg = json_string_value(json_object_get(out, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(out, "Message"));
        fprintf(stderr, "facelink: %s on %s: HTTP %d %s: %s\n", op, e->host, status,
                type ? type : "",
                msg   ? msg
                : out ? ""
                      : je.text);
        json_decref(out);
        out = NULL;
    }
out:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (ai)
        freeaddrinfo(ai);
    fl_free_string(body);
    return out;
}

/* Every item of a paged list (member `items`), following NextToken. */
static json_t *remote_all(const struct endpoint *e, const char *op, const char *coll,
                          const char *items, int page)
{
    json_t *all = json_array(), *token = NULL;
    for (;;) {
        json_t *req = json_pack("{s:s,s:i}", "CollectionId", coll, "MaxResults", page), *r;
        json_t *next;
        if (token)
            json_object_set_new(req, "NextToken", token);
        token = NULL;
        r = remote_call(e, op, req);
        json_decref(req);
        if (!r) {
            json_decref(all);
            return NULL;
        }
        json_array_extend(all, json_object_get(r, items));
        next = json_object_get(r, "NextToken");
        if (json_is_string(next) && json_string_length(next))
            token = json_incref(next);
        json_decref(r);
        if (!token)
            return all;
    }
}

/* ============================== Photos ============================== */

/* Find the photo for an ExternalImageId under dir (recursive) into out;
 * 1 if found. */
static int find_photo(const char *dir, const char *ext_id, int depth, char *out, size_t cap)
{
    static const char *const sfx[] = {"",      ".jpg", ".jpeg", ".png",
                                      ".webp", ".JPG", ".JPEG", ".PNG"};
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;
    if (!d)
        return 0;
    while (!found && (de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8)
                found = find_photo(path, ext_id, depth + 1, out, cap);
            continue;
        }
        for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]) && !found; i++) {
            char want[1024];
            snprintf(want, sizeof(want), "%s%s", ext_id, sfx[i]);
            if (strcmp(de->d_name, want) == 0) {
                snprintf(out, cap, "%s", path);
                found = 1;
            }
        }
    }
    closedir(d);
    return found;
}

static double box_iou(const json_t *a, const json_t *b)
{
    double al = json_number_value(json_object_get(a, "Left")),
           at = json_number_value(json_object_get(a, "Top")),
           aw = json_number_value(json_object_get(a, "Width")),
           ah = json_number_value(json_object_get(a, "Height"));
    double bl = json_number_value(json_object_get(b, "Left")),
           bt = json_number_value(json_object_get(b, "Top")),
           bw = json_number_value(json_object_get(b, "Width")),
           bh = json_number_value(json_object_get(b, "Height"));
    double ix = fmin(al + aw, bl + bw) - fmax(al, bl), iy = fmin(at + ah, bt + bh) - fmax(at, bt);
    double inter = ix > 0 && iy > 0 ? ix * iy : 0, uni = aw * ah + bw * bh - inter;
    return uni > 0 ? inter / uni : 0;
}

static void unmatched(json_t *list, const json_t *face, const char *why)
{
    json_array_append_new(list, json_pack("{s:O,s:O,s:s}", "FaceId",
                                          json_object_get(face, "FaceId"), "ExternalImageId",
                                          json_object_get(face, "ExternalImageId"), "Reason", why));
}

/* Index one photo for the remote faces `group` (same ExternalImageId);
 * fills map (remote FaceId -> local FaceId) and the report lists. */
static int migrate_photo(struct fl_service *svc, const char *coll, const char *photo,
                         const char *ext_id, json_t *group, json_t *map, json_t *lost,
                         json_t *dropped)
{
    json_t *req = json_pack("{s:s,s:s,s:s,s:i}", "CollectionId", coll, "ExternalImageId", ext_id,
                            "QualityFilter", "NONE", "MaxFaces", 100);
    json_t *resp, *recs, *del_ids = json_array();
    size_t nr, ng;
    bool taken[101] = {false}; /* IndexFaces returns at most MaxFaces = 100 */
    if (fl_cli_add_image(req, "Image", photo) != 0) {
        json_decref(req);
        json_decref(del_ids);
        for (size_t i = 0; i < json_array_size(group); i++)
            unmatched(lost, json_array_get(group, i), "photo unreadable");
        return 0;
    }
    resp = fl_cli_call(svc, "RekognitionService.IndexFaces", req);
    json_decref(req);
    if (!resp) {
        json_decref(del_ids);
        for (size_t i = 0; i < json_array_size(group); i++)
            unmatched(lost, json_array_get(group, i), "IndexFaces failed on the photo");
        return 0;
    }
    recs = json_object_get(resp, "FaceRecords");
    nr = json_array_size(recs);
    if (nr > 100)
        nr = 100;
    ng = json_array_size(group);
    /* greedy: the best-overlapping (remote, local) pair first */
    for (;;) {
        double best = MIN_IOU;
        size_t bi = 0, bj = 0;
        int any = 0;
        for (size_t i = 0; i < ng; i++) {
            json_t *g = json_array_get(group, i);
            if (json_object_get(g, "_done"))
                continue;
            for (size_t j = 0; j < nr; j++) {
                double v;
                if (taken[j])
                    continue;
                v = box_iou(json_object_get(g, "BoundingBox"),
                            json_object_get(json_object_get(json_array_get(recs, j), "Face"),
                                            "BoundingBox"));
                if (v >= best) {
                    best = v;
                    bi = i;
                    bj = j;
                    any = 1;
                }
            }
        }
        if (!any)
            break;
        taken[bj] = true;
        json_object_set_new(json_array_get(group, bi), "_done", json_true());
        json_object_set(
            map, json_string_value(json_object_get(json_array_get(group, bi), "FaceId")),
            json_object_get(json_object_get(json_array_get(recs, bj), "Face"), "FaceId"));
    }
    for (size_t i = 0; i < ng; i++)
        if (!json_object_get(json_array_get(group, i), "_done"))
            unmatched(lost, json_array_get(group, i), "no face found at that place in the photo");
    for (size_t j = 0; j < nr; j++)
        if (!taken[j]) {
            json_t *fid =
                json_object_get(json_object_get(json_array_get(recs, j), "Face"), "FaceId");
            json_array_append(del_ids, fid);
            json_array_append(dropped, fid);
        }
    json_decref(resp);
    if (json_array_size(del_ids)) {
        json_t *dreq = json_pack("{s:s,s:o}", "CollectionId", coll, "FaceIds", del_ids);
        json_t *dr = fl_cli_call(svc, "RekognitionService.DeleteFaces", dreq);
        json_decref(dreq);
        if (!dr)
            return -1;
        json_decref(dr);
    } else {
        json_decref(del_ids);
    }
    return 0;
}

int fl_cli_migrate(int argc, char **argv)
{
    struct fl_cli_opts o;
    struct endpoint e;
    struct fl_service *svc = NULL;
    json_t *faces = NULL, *users = NULL, *groups = NULL, *map = NULL, *lost = NULL, *dropped = NULL,
           *report = NULL, *assoc_failed = NULL;
    const char *ext;
    json_t *g;
    size_t i;
    json_t *f;
    int page, rc = 1;

    if (fl_cli_parse(argc, argv, &o, 0) != 0 || !o.endpoint || !o.collection || !o.images) {
        fprintf(stderr,
                "usage: facelink migrate --from-endpoint http://HOST[:PORT] --collection NAME "
                "--images DIR\n"
                "         [--access-key K --secret-key S] [--region R] [--page-size N]"
                " [--data-dir DIR] [--models DIR]\n");
        return 2;
    }
    memset(&e, 0, sizeof(e));
    if (parse_url(o.endpoint, &e) != 0)
        return 2;
    e.access_key = o.access_key ? o.access_key : getenv("AWS_ACCESS_KEY_ID");
    e.secret_key = o.secret_key ? o.secret_key : getenv("AWS_SECRET_ACCESS_KEY");
    e.region = o.region ? o.region : getenv("AWS_REGION") ? getenv("AWS_REGION") : "us-east-1";
    page = o.max_faces ? (int)strtol(o.max_faces, NULL, 10) : 1000;
    if (page < 1)
        page = 1000;
    faces = remote_all(&e, "ListFaces", o.collection, "Faces", page);
    users = faces ? remote_all(&e, "ListUsers", o.collection, "Users", page) : NULL;
    if (!faces || !users)
        goto out;
    svc = fl_cli_open(&o);
    if (!svc)
        goto out;
    {
        json_t *req = json_pack("{s:s}", "CollectionId", o.collection);
        json_t *r = fl_cli_call(svc, "RekognitionService.CreateCollection", req);
        json_decref(req);
        if (!r)
            goto out;
        json_decref(r);
    }
    groups = json_object();
    map = json_object();
    lost = json_array();
    dropped = json_array();
    assoc_failed = json_array();
    json_array_foreach(faces, i, f)
    {
        const char *x = json_string_value(json_object_get(f, "ExternalImageId"));
        json_t *grp;
        if (!x) {
            unmatched(lost, f, "no ExternalImageId: nothing names its photo");
            continue;
        }
        grp = json_object_get(groups, x);
        if (!grp) {
            grp = json_array();
            json_object_set_new(groups, x, grp);
        }
        json_array_append(grp, f);
    }
    json_object_foreach(groups, ext, g)
    {
        char photo[4096];
        if (!find_photo(o.images, ext, 0, photo, sizeof(photo))) {
            for (size_t k = 0; k < json_array_size(g); k++)
                unmatched(lost, json_array_get(g, k), "no photo with that name in --images");
            continue;
        }
        if (migrate_photo(svc, o.collection, photo, ext, g, map, lost, dropped) != 0)
            goto out;
    }
    /* users, with the faces that arrived */
    json_array_foreach(users, i, f)
    {
        const char *uid = json_string_value(json_object_get(f, "UserId"));
        json_t *req = json_pack("{s:s,s:s}", "CollectionId", o.collection, "UserId", uid);
        json_t *r = fl_cli_call(svc, "RekognitionService.CreateUser", req), *ids = json_array();
        size_t k;
        json_t *rf;
        json_decref(req);
        json_decref(r);
        json_array_foreach(faces, k, rf)
        {
            const char *fu = json_string_value(json_object_get(rf, "UserId"));
            json_t *to = json_object_get(map, json_string_value(json_object_get(rf, "FaceId")));
            if (fu && to && strcmp(fu, uid) == 0)
                json_array_append(ids, to);
        }
        /* AssociateFaces takes at most 100 faces per call */
        for (size_t off = 0; off < json_array_size(ids); off += 100) {
            json_t *part = json_array();
            for (size_t q = off; q < json_array_size(ids) && q < off + 100; q++)
                json_array_append(part, json_array_get(ids, q));
            req = json_pack("{s:s,s:s,s:o,s:f}", "CollectionId", o.collection, "UserId", uid,
                            "FaceIds", part, "UserMatchThreshold", 0.0);
            r = fl_cli_call(svc, "RekognitionService.AssociateFaces", req);
            json_decref(req);
            if (r)
                json_array_extend(assoc_failed, json_object_get(r, "UnsuccessfulFaceAssociations"));
            json_decref(r);
        }
        json_decref(ids);
    }
    report =
        json_pack("{s:s,s:s,s:i,s:i,s:i,s:O,s:O,s:O,s:O}", "Collection", o.collection,
                  "FromEndpoint", o.endpoint, "RemoteFaces", (int)json_array_size(faces),
                  "RemoteUsers", (int)json_array_size(users), "Migrated",
                  (int)json_object_size(map), "FaceIdMap", map, "Unmatched", lost,
                  "ExtraLocalFacesDropped", dropped, "UnsuccessfulFaceAssociations", assoc_failed);
    rc = fl_cli_print(report);
    if (json_array_size(lost))
        fprintf(stderr, "facelink: %zu of %zu faces could not be matched (see \"Unmatched\")\n",
                json_array_size(lost), json_array_size(faces));
out:
    fl_service_close(svc);
    json_decref(faces);
    json_decref(users);
    json_decref(groups);
    json_decref(map);
    json_decref(lost);
    json_decref(dropped);
    json_decref(assoc_failed);
    return rc;
}
