/*
 * cmd_serve.c: `facelink serve`: open the service, start the HTTP server,
 * wait for SIGINT or SIGTERM, stop cleanly.
 *
 * Signals are blocked in every thread (the mask is set before any thread
 * starts, so the server's threads inherit it) and taken synchronously with
 * sigwait() in the main thread: no async-signal-safety constraints, and the
 * shutdown runs as ordinary code (finish queued requests, close connections,
 * close the service).
 */
#include "facelink.h"
#include "facelink_server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int fl_cli_serve(int argc, char **argv);

static void serve_usage(FILE *f)
{
    size_t n = 0;
    const struct fl_server_option *o = fl_server_options(&n);
    fprintf(f, "usage: facelink serve [OPTIONS]\n\n"
               "Serve the Amazon Rekognition face API (AWS JSON 1.1, SigV4) over HTTP.\n"
               "Options come from defaults < --config file < environment < flags.\n"
               "In the file, write `name = value` with the names below (no dashes before).\n\n");
    for (size_t i = 0; i < n; i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s%s%s", o[i].name, o[i].arg ? " " : "",
                 o[i].arg ? o[i].arg : "");
        fprintf(f, "  %-36s %s\n  %-36s [env %s; default %s]\n", flag, o[i].help, "", o[i].env,
                o[i].dflt);
    }
    fprintf(f, "  %-36s %s\n\n", "--help", "show this help");
    fprintf(f, "Authentication: with access keys configured every request must carry a valid\n"
               "SigV4 signature (Authorization header or presigned query). With no keys the\n"
               "server accepts unsigned requests and refuses any non-loopback listen address.\n"
               "Endpoints: POST / (X-Amz-Target: RekognitionService.<Op>), GET /healthz,\n"
               "GET /metrics (Prometheus).\n");
}

int fl_cli_serve(int argc, char **argv)
{
    struct fl_server_config cfg;
    struct fl_service_config sc;
    struct fl_service *svc = NULL;
    struct fl_server *srv = NULL;
    struct fl_err err;
    bool help = false;
    sigset_t set;
    int sig = 0, rc = 1;

    fl_err_clear(&err);
    if (fl_server_config_from_args(&cfg, argc, argv, &help, &err) != FL_OK) {
        fprintf(stderr, "facelink serve: %s\n(see facelink serve --help)\n", err.msg);
        fl_server_config_fini(&cfg);
        return 2;
    }
    if (help) {
        serve_usage(stdout);
        fl_server_config_fini(&cfg);
        return 0;
    }
    if (fl_server_config_validate(&cfg, &err) != FL_OK) {
        fprintf(stderr, "facelink serve: %s\n", err.msg);
        fl_server_config_fini(&cfg);
        return 2;
    }
    fl_server_log_setup(&cfg);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&sc, 0, sizeof(sc));
    sc.data_dir = cfg.data_dir;
    sc.store_dsn = cfg.store;
    sc.models_dir = cfg.models_dir;
    sc.default_model = cfg.default_model;
    sc.crop_retention = cfg.crop_retention;
    sc.region = cfg.region;
    sc.n_workers = cfg.n_workers;
    svc = fl_service_open(&sc, &err);
    if (!svc) {
        fprintf(stderr, "facelink serve: cannot open the service: %s\n", err.msg);
        goto out;
    }
    cfg.dispatch = NULL; /* fl_service_call */
    cfg.dispatch_ctx = svc;
    srv = fl_server_start(&cfg, &err);
    if (!srv) {
        fprintf(stderr, "facelink serve: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "facelink %s: serving http://%s (data in %s); Ctrl-C stops\n", fl_version(),
            cfg.listen, cfg.data_dir);
    if (sigwait(&set, &sig) != 0)
        sig = 0;
    fprintf(stderr, "facelink: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    fl_server_stop(srv);
    fl_service_close(svc);
    fl_server_config_fini(&cfg);
    return rc;
}
