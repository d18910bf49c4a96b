/*
 * facelink_server.h: the HTTP server of FaceLink, for the `facelink serve`
 * command and for programs that embed the server.
 *
 * The server speaks Amazon Rekognition's wire protocol (AWS JSON 1.1 over
 * HTTP/1.1, SigV4) in front of a dispatch function, by default
 * fl_service_call() on an open struct fl_service. See docs/internals/server.md.
 *
 * Configuration comes from defaults, a `key = value` file, FACELINK_*
 * environment variables and command-line flags, in that order of increasing
 * precedence. Every option is listed by fl_server_options(), which is what
 * `facelink serve --help` prints.
 *
 * Threading: a configuration is a plain value owned by one thread. A running
 * server owns its threads; fl_server_stop() must be called from a thread that
 * is not one of them (never from inside the dispatch function).
 */
#ifndef FL_FACELINK_SERVER_H
#define FL_FACELINK_SERVER_H

#include "facelink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One operation: the same contract as fl_service_call(), with ctx in place of
 * the service. Called from worker threads, concurrently. On FL_OK *out_json
 * is a response the server releases with the configuration's free_fn. */
typedef enum fl_status (*fl_server_dispatch_fn)(void *ctx, const char *target, const char *body,
                                                size_t body_len, char **out_json, size_t *out_len,
                                                struct fl_err *err);
/* Releases a response string returned by the dispatch function. */
typedef void (*fl_server_free_fn)(void *ctx, char *s);

/* An access key. Read-only keys may call only Describe*, List*, Search*,
 * Detect*, Compare* and Get* operations. */
struct fl_server_key {
    char *access_key_id; /* owned */
    char *secret;        /* owned; never logged */
    bool read_only;
    int origin; /* which option set it: 0 keys, 1 read-only-keys, 2 keys-file */
};

/* Server configuration. Strings are owned (fl_server_config_fini frees them);
 * set them through fl_server_config_set() so ownership stays right. */
struct fl_server_config {
    char *listen;               /* "HOST:PORT" or "[V6]:PORT"; numeric host or "localhost" */
    char *data_dir;             /* service data directory */
    char *store;                /* store DSN; NULL: SQLite in data_dir */
    char *models_dir;           /* fetched model packages */
    char *default_model;        /* face model for new collections; NULL: the service default */
    char *crop_retention;       /* "none" | "crops" | "images" */
    char *region;               /* for ARNs */
    char *log_level;            /* "debug" | "info" | "warn" | "error" | "off" */
    bool log_json;              /* JSON log lines instead of text */
    int n_workers;              /* worker threads; 0: one per core */
    int n_io_threads;           /* HTTP I/O threads; 0: min(cores, 4) */
    int queue_max;              /* requests waiting for a worker; 0: 8 per worker */
    size_t body_limit;          /* bytes of request body accepted */
    int idle_timeout_s;         /* a connection idle this long is closed */
    int max_connections;        /* open connections, all clients */
    int max_connections_per_ip; /* open connections from one address (0: no limit) */
    int clock_skew_s;           /* SigV4: accepted distance between X-Amz-Date and now */
    int collection_metrics;     /* per-collection /metrics series: -1 auto (loopback only), 0, 1 */
    bool auth_off;              /* explicit --no-auth: accept every request unsigned */
    char *keys_file; /* file of "ACCESS_KEY_ID SECRET [read-only]" lines (read when set) */
    struct fl_server_key *keys; /* owned array of n_keys */
    size_t n_keys;

    /* Set by programs, not by files or flags. NULL dispatch: fl_service_call()
     * with dispatch_ctx as the struct fl_service *. NULL free_fn:
     * fl_free_string(). */
    fl_server_dispatch_fn dispatch;
    fl_server_free_fn free_fn;
    void *dispatch_ctx;
};

/* One documented option: what `facelink serve --help` prints. */
struct fl_server_option {
    const char *name; /* flag without "--" and key in the config file */
    const char *env;  /* environment variable */
    const char *arg;  /* placeholder of the value ("ADDR"); NULL for a switch */
    const char *dflt; /* default, as text */
    const char *help; /* one line */
};

/* The option table; *out_n gets its length. Static storage. */
FL_API const struct fl_server_option *fl_server_options(size_t *out_n);

/* Fill cfg with the defaults. Cannot fail except for memory, in which case
 * fields stay NULL and fl_server_config_validate() reports it. */
FL_API void fl_server_config_init(struct fl_server_config *cfg);
/* Free what cfg owns; cfg may then be re-initialised. NULL is a no-op. */
FL_API void fl_server_config_fini(struct fl_server_config *cfg);
/* Set one option by its name (as in fl_server_options(), e.g. "data-dir")
 * from text. Switches take "true/false/1/0/yes/no/on/off". "keys" and
 * "read-only-keys" take "ID:SECRET[,ID:SECRET...]"; "keys-file" names a file
 * of "ID SECRET [read-only]" lines, read at once. Each of these three replaces
 * the keys the same option set before and keeps the others'.
 * FL_ERR_INVALID_ARG for an unknown name or a bad value (message says which). */
FL_API enum fl_status fl_server_config_set(struct fl_server_config *cfg, const char *name,
                                           const char *value, struct fl_err *err);
/* Apply a `key = value` file ('#' comments, blank lines allowed). */
FL_API enum fl_status fl_server_config_load_file(struct fl_server_config *cfg, const char *path,
                                                 struct fl_err *err);
/* Apply every FACELINK_* variable of the option table that is set. */
FL_API enum fl_status fl_server_config_load_env(struct fl_server_config *cfg, struct fl_err *err);
/* The whole pipeline: defaults, then the file named by --config FILE or
 * FACELINK_CONFIG, then the environment, then the flags in argv (argv[0] is
 * the command name and skipped). Sets *out_help when --help/-h was given
 * (nothing else is then checked). The caller still runs validate. */
FL_API enum fl_status fl_server_config_from_args(struct fl_server_config *cfg, int argc,
                                                 char **argv, bool *out_help, struct fl_err *err);
/* Check a configuration: listen address parses, numbers in range, and the
 * security rule: a non-loopback address needs at least one key and auth on. */
FL_API enum fl_status fl_server_config_validate(const struct fl_server_config *cfg,
                                                struct fl_err *err);
/* Set up the process logger from cfg's log_level and log_json (and the core
 * layer, once). Call before opening the service. */
FL_API void fl_server_log_setup(const struct fl_server_config *cfg);

struct fl_server;

/* Validate cfg, bind and start serving. cfg is copied: the caller may free it
 * afterwards (dispatch_ctx must outlive the server). NULL with err set on
 * failure (bad configuration, address in use, ...). */
FL_API struct fl_server *fl_server_start(const struct fl_server_config *cfg, struct fl_err *err);
/* The bound TCP port (useful with port 0). */
FL_API uint16_t fl_server_port(const struct fl_server *srv);
/* Stop accepting, finish queued requests, close connections, free. NULL is a
 * no-op. Not from a server thread. */
FL_API void fl_server_stop(struct fl_server *srv);

#ifdef __cplusplus
}
#endif
#endif /* FL_FACELINK_SERVER_H */
