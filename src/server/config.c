/*
 * config.c: the server's configuration: defaults, a `key = value` file,
 * FACELINK_* environment variables and command-line flags.
 *
 * Precedence: flags > environment > file > defaults. fl_server_config_from_args()
 * applies the layers in increasing order, so a later layer simply overwrites
 * what an earlier one set. The config file itself is named by --config or
 * FACELINK_CONFIG (the flag wins) and is read first.
 *
 * One table (options[]) lists every option with its flag/file name,
 * environment variable, default and help line; `facelink serve --help`
 * prints it and a test checks that every field of the table is filled, so an
 * option cannot exist undocumented.
 *
 * Keys: "keys" and "read-only-keys" take ID:SECRET pairs separated by
 * commas; "keys-file" names a file of "ID SECRET [read-only]" lines, read
 * when the option is set. Each of the three replaces what the same option set
 * before (so a flag overrides the environment's keys) and adds to what the
 * other two set. Secrets on the command line are visible to other local users
 * through /proc; the keys file (mode 0600) is the recommended place.
 *
 * Threading: none; a configuration belongs to one thread.
 */
#include "server/server_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_LISTEN "127.0.0.1:8085"
/* Two 5 MB images (CompareFaces) in base64 plus JSON: 2 * 6990508 + slack. */
#define DEFAULT_BODY_LIMIT (14u * 1024 * 1024)

/* clang-format off */
static const struct fl_server_option options[] = {
    {"config", "FACELINK_CONFIG", "FILE", "(none)",
     "read options from FILE (key = value lines, keys named as these flags)"},
    {"listen", "FACELINK_LISTEN", "ADDR", DEFAULT_LISTEN,
     "HOST:PORT or [V6]:PORT to listen on; non-loopback needs access keys"},
    {"data-dir", "FACELINK_DATA_DIR", "DIR", "data",
     "where the database and retained crops live"},
    {"store", "FACELINK_STORE", "DSN", "(SQLite in data-dir)",
     "store backend: sqlite:PATH (PostgreSQL is not built yet)"},
    {"models-dir", "FACELINK_MODELS_DIR", "DIR", "models",
     "fetched model packages"},
    {"default-model", "FACELINK_DEFAULT_MODEL", "NAME", "(service default)",
     "face model for new collections"},
    {"crop-retention", "FACELINK_CROP_RETENTION", "MODE", "crops",
     "keep nothing, face crops or whole images: none|crops|images"},
    {"region", "FACELINK_REGION", "REGION", "us-east-1",
     "region written into collection ARNs"},
    {"workers", "FACELINK_WORKERS", "N", "0 (one per core)",
     "worker threads that run operations"},
    {"io-threads", "FACELINK_IO_THREADS", "N", "0 (cores, at most 4)",
     "HTTP I/O threads (they never run operations)"},
    {"queue", "FACELINK_QUEUE", "N", "0 (8 per worker)",
     "requests that may wait for a worker; beyond, ThrottlingException"},
    {"body-limit", "FACELINK_BODY_LIMIT", "BYTES", "14M",
     "largest request body (suffix K, M, G); over it, ImageTooLargeException"},
    {"idle-timeout", "FACELINK_IDLE_TIMEOUT", "SECONDS", "60",
     "close a connection idle (also mid-request) this long"},
    {"max-connections", "FACELINK_MAX_CONNECTIONS", "N", "512",
     "open connections, all clients together"},
    {"max-connections-per-ip", "FACELINK_MAX_CONNECTIONS_PER_IP", "N", "0 (no limit)",
     "open connections from one client address"},
    {"clock-skew", "FACELINK_CLOCK_SKEW", "SECONDS", "900",
     "SigV4: largest accepted distance between X-Amz-Date and now"},
    {"collection-metrics", "FACELINK_COLLECTION_METRICS", "auto|on|off", "auto",
     "per-collection series in /metrics (auto: only on a loopback address)"},
    {"keys", "FACELINK_KEYS", "ID:SECRET,...", "(none)",
     "access keys allowed every operation"},
    {"read-only-keys", "FACELINK_READ_ONLY_KEYS", "ID:SECRET,...", "(none)",
     "access keys limited to Describe/List/Search/Detect/Compare/Get operations"},
    {"keys-file", "FACELINK_KEYS_FILE", "FILE", "(none)",
     "file of 'ID SECRET [read-only]' lines (keep it mode 0600)"},
    {"no-auth", "FACELINK_NO_AUTH", NULL, "off",
     "accept unsigned requests even with keys configured (loopback only)"},
    {"log-level", "FACELINK_LOG_LEVEL", "LEVEL", "info",
     "debug|info|warn|error|off"},
    {"log-json", "FACELINK_LOG_JSON", NULL, "off",
     "log JSON lines instead of text"},
};
/* clang-format on */

const struct fl_server_option *fl_server_options(size_t *out_n)
{
    *out_n = FL_ARRAY_LEN(options);
    return options;
}

static enum fl_status set_str(char **dst, const char *v, struct fl_err *err)
{
    char *c = NULL;
    if (v && *v) {
        c = fl_strdup(v);
        if (!c)
            return fl_err_set(err, FL_ERR_NOMEM, "config: out of memory");
    }
    fl_free(*dst);
    *dst = c;
    return FL_OK;
}

void fl_server_config_init(struct fl_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = fl_strdup(DEFAULT_LISTEN);
    cfg->data_dir = fl_strdup("data");
    cfg->models_dir = fl_strdup("models");
    cfg->crop_retention = fl_strdup("crops");
    cfg->region = fl_strdup("us-east-1");
    cfg->log_level = fl_strdup("info");
    cfg->body_limit = DEFAULT_BODY_LIMIT;
    cfg->idle_timeout_s = 60;
    cfg->max_connections = 512;
    cfg->clock_skew_s = 900;
    cfg->collection_metrics = -1;
}

static void key_fini(struct fl_server_key *k)
{
    fl_free(k->access_key_id);
    if (k->secret) {
        memset(k->secret, 0, strlen(k->secret));
        fl_free(k->secret);
    }
}

void fl_server_config_fini(struct fl_server_config *cfg)
{
    if (!cfg)
        return;
    fl_free(cfg->listen);
    fl_free(cfg->data_dir);
    fl_free(cfg->store);
    fl_free(cfg->models_dir);
    fl_free(cfg->default_model);
    fl_free(cfg->crop_retention);
    fl_free(cfg->region);
    fl_free(cfg->log_level);
    fl_free(cfg->keys_file);
    for (size_t i = 0; i < cfg->n_keys; i++)
        key_fini(&cfg->keys[i]);
    fl_free(cfg->keys);
    memset(cfg, 0, sizeof(*cfg));
}

/* Remove the keys a given option set earlier. */
static void drop_keys(struct fl_server_config *cfg, int origin)
{
    size_t o = 0;
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (cfg->keys[i].origin == origin)
            key_fini(&cfg->keys[i]);
        else
            cfg->keys[o++] = cfg->keys[i];
    }
    cfg->n_keys = o;
}

static bool key_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static enum fl_status add_key(struct fl_server_config *cfg, const char *id, size_t id_len,
                              const char *secret, size_t secret_len, bool ro, int origin,
                              struct fl_err *err)
{
    struct fl_server_key *nk;
    if (!key_id_ok(id, id_len))
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "config: access key id '%.*s' must be 1-128 of [A-Za-z0-9_.-]",
                          (int)FL_MIN(id_len, 64), id);
    if (secret_len == 0 || secret_len > 256)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "config: the secret of access key '%.*s' must be 1-256 bytes",
                          (int)id_len, id);
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (strlen(cfg->keys[i].access_key_id) == id_len &&
            memcmp(cfg->keys[i].access_key_id, id, id_len) == 0)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "config: access key '%.*s' given twice",
                              (int)id_len, id);
    nk = fl_realloc(cfg->keys, (cfg->n_keys + 1) * sizeof(*nk));
    if (!nk)
        return fl_err_set(err, FL_ERR_NOMEM, "config: out of memory");
    cfg->keys = nk;
    nk = &cfg->keys[cfg->n_keys];
    nk->access_key_id = fl_strndup(id, id_len);
    nk->secret = fl_strndup(secret, secret_len);
    nk->read_only = ro;
    nk->origin = origin;
    if (!nk->access_key_id || !nk->secret) {
        key_fini(nk);
        return fl_err_set(err, FL_ERR_NOMEM, "config: out of memory");
    }
    cfg->n_keys++;
    return FL_OK;
}

/* "ID:SECRET[,ID:SECRET...]" */
static enum fl_status set_key_list(struct fl_server_config *cfg, const char *v, bool ro,
                                   struct fl_err *err)
{
    drop_keys(cfg, ro ? 1 : 0);
    for (const char *s = v; s && *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        const char *colon = memchr(s, ':', len);
        if (len > 0) {
            if (!colon)
                return fl_err_set(err, FL_ERR_INVALID_ARG,
                                  "config: keys: expected ID:SECRET, got an entry without ':'");
            enum fl_status st = add_key(cfg, s, (size_t)(colon - s), colon + 1,
                                        len - (size_t)(colon - s) - 1, ro, ro ? 1 : 0, err);
            if (st != FL_OK)
                return st;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return FL_OK;
}

static enum fl_status load_keys_file(struct fl_server_config *cfg, const char *path,
                                     struct fl_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat sb;
    enum fl_status st;
    drop_keys(cfg, 2);
    st = fl_file_read(path, 1u << 20, &data, &len, err);
    if (st != FL_OK)
        return st;
    if (stat(path, &sb) == 0 && (sb.st_mode & 077))
        FL_LOG_W("keys file %s is readable by other users (mode %o); chmod 600 it", path,
                 (unsigned)(sb.st_mode & 0777));
    char *s = (char *)data;
    int line = 0;
    while (st == FL_OK && s < (char *)data + len) {
        char *e = memchr(s, '\n', (size_t)((char *)data + len - s));
        char *end = e ? e : (char *)data + len;
        char *f[4] = {0};
        size_t fl[4] = {0};
        int nf = 0;
        line++;
        for (char *p = s; p < end && nf < 4;) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
            if (p >= end || *p == '#')
                break;
            f[nf] = p;
            while (p < end && *p != ' ' && *p != '\t' && *p != '\r')
                p++;
            fl[nf] = (size_t)(p - f[nf]);
            nf++;
        }
        if (nf == 1 || nf == 4 || (nf == 3 && !(fl[2] == 9 && memcmp(f[2], "read-only", 9) == 0))) {
            st = fl_err_set(err, FL_ERR_INVALID_ARG,
                            "config: %s:%d: expected 'ACCESS_KEY_ID SECRET [read-only]'", path,
                            line);
        } else if (nf >= 2) {
            st = add_key(cfg, f[0], fl[0], f[1], fl[1], nf == 3, 2, err);
        }
        s = end + 1;
    }
    memset(data, 0, len);
    fl_free(data);
    return st;
}

static enum fl_status parse_bool(const char *name, const char *v, bool *out, struct fl_err *err)
{
    static const char *const yes[] = {"1", "true", "yes", "on", ""};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < FL_ARRAY_LEN(yes); i++)
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return FL_OK;
        }
    for (size_t i = 0; i < FL_ARRAY_LEN(no); i++)
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return FL_OK;
        }
    return fl_err_set(err, FL_ERR_INVALID_ARG, "config: %s: expected true or false, got '%.64s'",
                      name, v);
}

/* Integer in [lo, hi]; with `sizes`, an optional K/M/G suffix (binary). */
static enum fl_status parse_num(const char *name, const char *v, long long lo, long long hi,
                                bool sizes, long long *out, struct fl_err *err)
{
    char *end = NULL;
    long long n;
    if (!*v || !((*v >= '0' && *v <= '9')))
        goto bad;
    n = strtoll(v, &end, 10);
    if (sizes && *end) {
        long long mul = 1;
        switch (*end) {
        case 'k':
        case 'K':
            mul = 1024;
            break;
        case 'm':
        case 'M':
            mul = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mul = 1024 * 1024 * 1024;
            break;
        default:
            goto bad;
        }
        end++;
        if (*end == 'i' && end[1] == 'B')
            end += 2;
        else if (*end == 'B')
            end++;
        if (n > hi / mul)
            goto range;
        n *= mul;
    }
    if (*end)
        goto bad;
    if (n < lo || n > hi)
        goto range;
    *out = n;
    return FL_OK;
bad:
    return fl_err_set(err, FL_ERR_INVALID_ARG, "config: %s: '%.64s' is not a number", name, v);
range:
    return fl_err_set(err, FL_ERR_INVALID_ARG, "config: %s: %.64s is outside [%lld, %lld]", name, v,
                      lo, hi);
}

enum fl_status fl_server_config_set(struct fl_server_config *cfg, const char *name, const char *v,
                                    struct fl_err *err)
{
    long long n = 0;
    enum fl_status st;
    if (!v)
        v = "";
    if (strcmp(name, "listen") == 0)
        return set_str(&cfg->listen, v, err);
    if (strcmp(name, "data-dir") == 0)
        return set_str(&cfg->data_dir, v, err);
    if (strcmp(name, "store") == 0)
        return set_str(&cfg->store, v, err);
    if (strcmp(name, "models-dir") == 0)
        return set_str(&cfg->models_dir, v, err);
    if (strcmp(name, "default-model") == 0)
        return set_str(&cfg->default_model, v, err);
    if (strcmp(name, "region") == 0)
        return set_str(&cfg->region, v, err);
    if (strcmp(name, "crop-retention") == 0) {
        if (strcmp(v, "none") != 0 && strcmp(v, "crops") != 0 && strcmp(v, "images") != 0)
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "config: crop-retention: expected none, crops or images, got "
                              "'%.64s'",
                              v);
        return set_str(&cfg->crop_retention, v, err);
    }
    if (strcmp(name, "log-level") == 0) {
        enum fl_log_level lv;
        if (!fl_log_level_parse(v, &lv))
            return fl_err_set(err, FL_ERR_INVALID_ARG,
                              "config: log-level: expected debug, info, warn, error or off, got "
                              "'%.64s'",
                              v);
        return set_str(&cfg->log_level, v, err);
    }
    if (strcmp(name, "log-json") == 0)
        return parse_bool(name, v, &cfg->log_json, err);
    if (strcmp(name, "no-auth") == 0)
        return parse_bool(name, v, &cfg->auth_off, err);
    if (strcmp(name, "collection-metrics") == 0) {
        bool on;
        if (strcmp(v, "auto") == 0) {
            cfg->collection_metrics = -1;
            return FL_OK;
        }
        st = parse_bool(name, v, &on, err);
        if (st == FL_OK)
            cfg->collection_metrics = on;
        return st;
    }
    if (strcmp(name, "keys") == 0)
        return set_key_list(cfg, v, false, err);
    if (strcmp(name, "read-only-keys") == 0)
        return set_key_list(cfg, v, true, err);
    if (strcmp(name, "keys-file") == 0) {
        st = set_str(&cfg->keys_file, v, err);
        if (st == FL_OK && cfg->keys_file)
            st = load_keys_file(cfg, cfg->keys_file, err);
        else if (st == FL_OK)
            drop_keys(cfg, 2);
        return st;
    }
    if (strcmp(name, "body-limit") == 0) {
        st = parse_num(name, v, 1024, 1LL << 30, true, &n, err);
        if (st == FL_OK)
            cfg->body_limit = (size_t)n;
        return st;
    }
    struct {
        const char *name;
        int *dst;
        long long lo, hi;
    } ints[] = {
        {"workers", &cfg->n_workers, 0, 1024},
        {"io-threads", &cfg->n_io_threads, 0, 64},
        {"queue", &cfg->queue_max, 0, 1000000},
        {"idle-timeout", &cfg->idle_timeout_s, 1, 86400},
        {"max-connections", &cfg->max_connections, 1, 1000000},
        {"max-connections-per-ip", &cfg->max_connections_per_ip, 0, 1000000},
        {"clock-skew", &cfg->clock_skew_s, 60, 86400},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(ints); i++) {
        if (strcmp(name, ints[i].name) == 0) {
            st = parse_num(name, v, ints[i].lo, ints[i].hi, false, &n, err);
            if (st == FL_OK)
                *ints[i].dst = (int)n;
            return st;
        }
    }
    return fl_err_set(err, FL_ERR_INVALID_ARG, "config: unknown option '%.64s'", name);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

enum fl_status fl_server_config_load_file(struct fl_server_config *cfg, const char *path,
                                          struct fl_err *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    enum fl_status st = fl_file_read(path, 1u << 20, &data, &len, err);
    if (st != FL_OK)
        return st;
    char *text = fl_strndup((char *)data, len); /* a NUL-terminated copy to split */
    fl_free(data);
    if (!text)
        return fl_err_set(err, FL_ERR_NOMEM, "config: out of memory");
    int line = 0;
    for (char *p = text; p && st == FL_OK;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        char *l = trim(p);
        if (*l && *l != '#') {
            char *eq = strchr(l, '=');
            if (!eq) {
                st = fl_err_set(err, FL_ERR_INVALID_ARG, "config: %s:%d: expected key = value",
                                path, line);
            } else {
                *eq = '\0';
                char *k = trim(l), *v = trim(eq + 1);
                size_t vl = strlen(v);
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                    v[vl - 1] = '\0';
                    v++;
                }
                if (strcmp(k, "config") == 0) {
                    st = fl_err_set(err, FL_ERR_INVALID_ARG,
                                    "config: %s:%d: a config file cannot name another", path, line);
                } else {
                    st = fl_server_config_set(cfg, k, v, err);
                    if (st != FL_OK && err) {
                        char m[FL_ERR_MSG_MAX];
                        snprintf(m, sizeof(m), "%s", err->msg);
                        fl_err_set(err, st, "%s:%d: %s", path, line, m);
                    }
                }
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    memset(text, 0, len);
    fl_free(text);
    return st;
}

enum fl_status fl_server_config_load_env(struct fl_server_config *cfg, struct fl_err *err)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(options); i++) {
        if (strcmp(options[i].name, "config") == 0)
            continue;
        const char *v = getenv(options[i].env);
        if (!v)
            continue;
        enum fl_status st = fl_server_config_set(cfg, options[i].name, v, err);
        if (st != FL_OK) {
            if (err) {
                char m[FL_ERR_MSG_MAX];
                snprintf(m, sizeof(m), "%s", err->msg);
                fl_err_set(err, st, "%s: %s", options[i].env, m);
            }
            return st;
        }
    }
    return FL_OK;
}

static const struct fl_server_option *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(options); i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

enum fl_status fl_server_config_from_args(struct fl_server_config *cfg, int argc, char **argv,
                                          bool *out_help, struct fl_err *err)
{
    enum fl_status st;
    const char *config_path = getenv("FACELINK_CONFIG");
    *out_help = false;
    fl_server_config_init(cfg);

    /* Pass 1: --help and --config, which decide what else is read. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *out_help = true;
            return FL_OK;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
    }
    if (config_path && *config_path) {
        st = fl_server_config_load_file(cfg, config_path, err);
        if (st != FL_OK)
            return st;
    }
    st = fl_server_config_load_env(cfg, err);
    if (st != FL_OK)
        return st;

    /* Pass 2: the flags, in order. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "unexpected argument '%.64s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct fl_server_option *o = find_option(name, nlen);
        const char *v;
        if (!o)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "unknown option '--%.*s'",
                              (int)FL_MIN(nlen, 64), name);
        if (eq) {
            v = eq + 1;
        } else if (!o->arg) {
            v = "true";
        } else {
            if (i + 1 >= argc)
                return fl_err_set(err, FL_ERR_INVALID_ARG, "option --%s needs a value %s", o->name,
                                  o->arg);
            v = argv[++i];
        }
        if (strcmp(o->name, "config") == 0)
            continue; /* read in pass 1 */
        st = fl_server_config_set(cfg, o->name, v, err);
        if (st != FL_OK)
            return st;
    }
    return FL_OK;
}

enum fl_status fl__server_parse_listen(const char *listen, struct sockaddr_storage *out,
                                       unsigned *out_len, bool *out_loopback, struct fl_err *err)
{
    char host[256];
    const char *port_s;
    long port;
    char *end = NULL;
    if (!listen || !*listen)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "listen: empty address");
    if (listen[0] == '[') {
        const char *rb = strchr(listen, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - listen - 1) >= sizeof(host))
            goto bad;
        memcpy(host, listen + 1, (size_t)(rb - listen - 1));
        host[rb - listen - 1] = '\0';
        port_s = rb + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof(host) || strchr(listen, ':') != colon)
            goto bad;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port_s = colon + 1;
    }
    if (!*port_s)
        goto bad;
    port = strtol(port_s, &end, 10);
    if (*end || port < 0 || port > 65535)
        goto bad;
    memset(out, 0, sizeof(*out));
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *out_len = sizeof(*v4);
        *out_loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        return FL_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *out_len = sizeof(*v6);
        *out_loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
        return FL_OK;
    }
bad:
    return fl_err_set(err, FL_ERR_INVALID_ARG,
                      "listen: '%.64s' is not HOST:PORT or [V6]:PORT with a numeric host or "
                      "localhost",
                      listen);
}

enum fl_status fl_server_config_validate(const struct fl_server_config *cfg, struct fl_err *err)
{
    struct sockaddr_storage ss;
    unsigned ss_len;
    bool loopback = false;
    enum fl_status st;
    if (!cfg->listen || !cfg->data_dir || !cfg->models_dir || !cfg->crop_retention ||
        !cfg->region || !cfg->log_level)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "config: listen, data-dir, models-dir, crop-retention, region and "
                          "log-level must be set");
    st = fl__server_parse_listen(cfg->listen, &ss, &ss_len, &loopback, err);
    if (st != FL_OK)
        return st;
    if (!loopback && (cfg->n_keys == 0 || cfg->auth_off))
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "refusing to listen on %s without authentication: configure access "
                          "keys (--keys-file, --keys) and leave --no-auth off, or listen on "
                          "127.0.0.1",
                          cfg->listen);
    if (cfg->body_limit < 1024)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "config: body-limit below 1K");
    if (cfg->n_workers < 0 || cfg->n_io_threads < 0 || cfg->queue_max < 0 ||
        cfg->idle_timeout_s < 1 || cfg->max_connections < 1 || cfg->max_connections_per_ip < 0 ||
        cfg->clock_skew_s < 60)
        return fl_err_set(err, FL_ERR_INVALID_ARG, "config: a number is out of range");
    for (size_t i = 0; i < cfg->n_keys; i++)
        if (!cfg->keys[i].access_key_id || !cfg->keys[i].secret || !*cfg->keys[i].secret)
            return fl_err_set(err, FL_ERR_INVALID_ARG, "config: access key %zu is incomplete", i);
    return FL_OK;
}

void fl_server_log_setup(const struct fl_server_config *cfg)
{
    enum fl_log_level lv = FL_LOG_INFO;
    fl_core_init(); /* the CLI's first library call: set up core before the service opens */
    if (cfg->log_level)
        fl_log_level_parse(cfg->log_level, &lv);
    fl_log_setup(lv, cfg->log_json);
}

enum fl_status fl__server_config_copy(struct fl_server_config *dst,
                                      const struct fl_server_config *src, struct fl_err *err)
{
    enum fl_status st = FL_OK;
    memset(dst, 0, sizeof(*dst));
    *dst = *src;
    dst->listen = dst->data_dir = dst->store = dst->models_dir = dst->default_model = NULL;
    dst->crop_retention = dst->region = dst->log_level = dst->keys_file = NULL;
    dst->keys = NULL;
    dst->n_keys = 0;
    struct {
        char **d;
        const char *s;
    } strs[] = {
        {&dst->listen, src->listen},
        {&dst->data_dir, src->data_dir},
        {&dst->store, src->store},
        {&dst->models_dir, src->models_dir},
        {&dst->default_model, src->default_model},
        {&dst->crop_retention, src->crop_retention},
        {&dst->region, src->region},
        {&dst->log_level, src->log_level},
        {&dst->keys_file, src->keys_file},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(strs) && st == FL_OK; i++)
        st = set_str(strs[i].d, strs[i].s, err);
    for (size_t i = 0; i < src->n_keys && st == FL_OK; i++) {
        const struct fl_server_key *k = &src->keys[i];
        st = add_key(dst, k->access_key_id, strlen(k->access_key_id), k->secret, strlen(k->secret),
                     k->read_only, k->origin, err);
    }
    if (st != FL_OK)
        fl_server_config_fini(dst);
    return st;
}
