/* test_server_config.c: the server configuration: defaults, file,
 * environment and flags with precedence flags > env > file > defaults;
 * value validation; keys and the keys file; the documented option table;
 * listen-address parsing and the loopback rule. */
#include "t.h"
#include "server/server_int.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

T_MAIN_STATE;

static char tmpdir[256];

static const char *tmp_file(const char *name, const char *content, int mode)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(content, f);
    fclose(f);
    chmod(path, (mode_t)mode);
    return path;
}

static void clear_env(void)
{
    size_t n;
    const struct fl_server_option *o = fl_server_options(&n);
    for (size_t i = 0; i < n; i++)
        unsetenv(o[i].env);
}

static void test_option_table_documented(void)
{
    size_t n;
    const struct fl_server_option *o = fl_server_options(&n);
    static const char *const required[] = {
        "listen",         "data-dir",   "store",         "workers",        "keys",
        "read-only-keys", "keys-file",  "default-model", "crop-retention", "log-level",
        "log-json",       "body-limit", "idle-timeout",  "no-auth",        "queue"};
    T_CHECK(n >= FL_ARRAY_LEN(required));
    for (size_t i = 0; i < n; i++) {
        T_CHECK(o[i].name && *o[i].name);
        T_CHECK(o[i].env && strncmp(o[i].env, "FACELINK_", 9) == 0);
        T_CHECK(o[i].help && strlen(o[i].help) > 10);
        T_CHECK(o[i].dflt && *o[i].dflt);
    }
    for (size_t k = 0; k < FL_ARRAY_LEN(required); k++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found |= strcmp(o[i].name, required[k]) == 0;
        if (!found) {
            printf("# option %s undocumented\n", required[k]);
            t_g.cur_failed++;
        }
    }
    /* every option except config is settable by name */
    struct fl_server_config c;
    fl_server_config_init(&c);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(o[i].name, "config") == 0 || strcmp(o[i].name, "keys-file") == 0)
            continue;
        struct fl_err err;
        const char *v = !o[i].arg                                      ? "true"
                        : strcmp(o[i].name, "listen") == 0             ? "127.0.0.1:1"
                        : strcmp(o[i].name, "crop-retention") == 0     ? "none"
                        : strcmp(o[i].name, "log-level") == 0          ? "warn"
                        : strcmp(o[i].name, "collection-metrics") == 0 ? "off"
                        : strstr(o[i].name, "keys")                    ? "AK:sk"
                        : strcmp(o[i].name, "body-limit") == 0         ? "2M"
                        : strcmp(o[i].name, "clock-skew") == 0         ? "300"
                        : strcmp(o[i].arg, "N") == 0 || strcmp(o[i].arg, "SECONDS") == 0 ? "3"
                                                                                         : "x";
        if (strcmp(o[i].name, "read-only-keys") == 0)
            v = "AKRO:sk";
        if (fl_server_config_set(&c, o[i].name, v, &err) != FL_OK) {
            printf("# set %s=%s: %s\n", o[i].name, v, err.msg);
            t_g.cur_failed++;
        }
    }
    fl_server_config_fini(&c);
}

static void test_defaults(void)
{
    struct fl_server_config c;
    struct fl_err err;
    fl_server_config_init(&c);
    T_CHECK_EQ_STR(c.listen, "127.0.0.1:8085");
    T_CHECK_EQ_STR(c.data_dir, "data");
    T_CHECK_EQ_STR(c.crop_retention, "crops");
    T_CHECK(c.body_limit >= 2 * 6990508u); /* two 5 MB images in base64 (CompareFaces) */
    T_CHECK_EQ_INT(c.clock_skew_s, 900);
    T_CHECK_EQ_INT(c.n_keys, 0);
    T_CHECK(!c.auth_off);
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_OK);
    fl_server_config_fini(&c);
}

static void test_precedence(void)
{
    struct fl_server_config c;
    struct fl_err err;
    bool help;
    clear_env();
    const char *path = tmp_file("p.conf",
                                "# comment\n"
                                "listen = 127.0.0.1:7001\n"
                                "data-dir = /file/data\n"
                                "workers = 3\n"
                                "  crop-retention=\"images\"  \n"
                                "\n"
                                "log-level = debug\n",
                                0644);
    T_REQUIRE(path);
    /* file only */
    char *a1[] = {"serve", "--config", (char *)path};
    T_REQUIRE(fl_server_config_from_args(&c, 3, a1, &help, &err) == FL_OK);
    T_CHECK_EQ_STR(c.listen, "127.0.0.1:7001");
    T_CHECK_EQ_STR(c.data_dir, "/file/data");
    T_CHECK_EQ_INT(c.n_workers, 3);
    T_CHECK_EQ_STR(c.crop_retention, "images");
    T_CHECK_EQ_STR(c.models_dir, "models"); /* default kept */
    fl_server_config_fini(&c);
    /* env over file */
    setenv("FACELINK_CONFIG", path, 1);
    setenv("FACELINK_DATA_DIR", "/env/data", 1);
    setenv("FACELINK_WORKERS", "5", 1);
    char *a2[] = {"serve"};
    T_REQUIRE(fl_server_config_from_args(&c, 1, a2, &help, &err) == FL_OK);
    T_CHECK_EQ_STR(c.listen, "127.0.0.1:7001"); /* from the file named by FACELINK_CONFIG */
    T_CHECK_EQ_STR(c.data_dir, "/env/data");
    T_CHECK_EQ_INT(c.n_workers, 5);
    fl_server_config_fini(&c);
    /* flags over env */
    char *a3[] = {"serve", "--data-dir", "/flag/data", "--workers=7", "--log-json"};
    T_REQUIRE(fl_server_config_from_args(&c, 5, a3, &help, &err) == FL_OK);
    T_CHECK_EQ_STR(c.data_dir, "/flag/data");
    T_CHECK_EQ_INT(c.n_workers, 7);
    T_CHECK(c.log_json);
    T_CHECK_EQ_STR(c.log_level, "debug"); /* still from the file */
    T_CHECK(!help);
    fl_server_config_fini(&c);
    /* --config flag beats FACELINK_CONFIG */
    const char *path2 = tmp_file("q.conf", "listen = 127.0.0.1:7002\n", 0644);
    char *a4[] = {"serve", "--config=" /* joined */, NULL};
    char joined[600];
    snprintf(joined, sizeof(joined), "--config=%s", path2);
    a4[1] = joined;
    T_REQUIRE(fl_server_config_from_args(&c, 2, a4, &help, &err) == FL_OK);
    T_CHECK_EQ_STR(c.listen, "127.0.0.1:7002");
    fl_server_config_fini(&c);
    clear_env();
}

static void test_help_and_errors(void)
{
    struct fl_server_config c;
    struct fl_err err;
    bool help = false;
    clear_env();
    char *a1[] = {"serve", "--workers", "x", "--help"};
    T_CHECK_EQ_INT(fl_server_config_from_args(&c, 4, a1, &help, &err), FL_OK);
    T_CHECK(help);
    fl_server_config_fini(&c);

    struct {
        int argc;
        char *argv[4];
        const char *want;
    } bad[] = {
        {2, {"serve", "--bogus"}, "unknown option '--bogus'"},
        {2, {"serve", "stray"}, "unexpected argument"},
        {2, {"serve", "--listen"}, "needs a value"},
        {3, {"serve", "--workers", "-1"}, "not a number"},
        {3, {"serve", "--workers", "5000"}, "outside"},
        {3, {"serve", "--crop-retention", "all"}, "none, crops or images"},
        {3, {"serve", "--log-level", "loud"}, "log-level"},
        {3, {"serve", "--body-limit", "12X"}, "not a number"},
        {2, {"serve", "--log-json=maybe"}, "true or false"},
        {3, {"serve", "--keys", "nocolon"}, "ID:SECRET"},
        {3, {"serve", "--keys", "A:x,A:y"}, "given twice"},
        {3, {"serve", "--keys", "bad id:x"}, "[A-Za-z0-9_.-]"},
        {3, {"serve", "--config", "/nonexistent/facelink.conf"}, ""},
    };
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++) {
        fl_err_clear(&err);
        enum fl_status st = fl_server_config_from_args(&c, bad[i].argc, bad[i].argv, &help, &err);
        if (st == FL_OK || !strstr(err.msg, bad[i].want)) {
            printf("# case %zu: status %d, message '%s', want '%s'\n", i, st, err.msg, bad[i].want);
            t_g.cur_failed++;
        }
        fl_server_config_fini(&c);
    }
    /* a bad environment value names its variable */
    setenv("FACELINK_IDLE_TIMEOUT", "soon", 1);
    char *a2[] = {"serve"};
    T_CHECK(fl_server_config_from_args(&c, 1, a2, &help, &err) != FL_OK);
    T_CHECK(strstr(err.msg, "FACELINK_IDLE_TIMEOUT") != NULL);
    fl_server_config_fini(&c);
    clear_env();
    /* a bad file line names file and line */
    const char *path = tmp_file("bad.conf", "listen = 127.0.0.1:1\nworkers: 3\n", 0644);
    char *a3[] = {"serve", "--config", (char *)path};
    T_CHECK(fl_server_config_from_args(&c, 3, a3, &help, &err) != FL_OK);
    T_CHECK(strstr(err.msg, "bad.conf:2") != NULL);
    fl_server_config_fini(&c);
}

static void test_collection_metrics_option(void)
{
    struct fl_server_config c;
    struct fl_err err;
    fl_server_config_init(&c);
    T_CHECK_EQ_INT(c.collection_metrics, -1);
    T_CHECK_EQ_INT(fl_server_config_set(&c, "collection-metrics", "off", &err), FL_OK);
    T_CHECK_EQ_INT(c.collection_metrics, 0);
    T_CHECK_EQ_INT(fl_server_config_set(&c, "collection-metrics", "on", &err), FL_OK);
    T_CHECK_EQ_INT(c.collection_metrics, 1);
    T_CHECK_EQ_INT(fl_server_config_set(&c, "collection-metrics", "auto", &err), FL_OK);
    T_CHECK_EQ_INT(c.collection_metrics, -1);
    T_CHECK(fl_server_config_set(&c, "collection-metrics", "sometimes", &err) != FL_OK);
    fl_server_config_fini(&c);
}

static void test_sizes(void)
{
    struct fl_server_config c;
    struct fl_err err;
    fl_server_config_init(&c);
    T_CHECK_EQ_INT(fl_server_config_set(&c, "body-limit", "7M", &err), FL_OK);
    T_CHECK_EQ_INT(c.body_limit, 7 * 1024 * 1024);
    T_CHECK_EQ_INT(fl_server_config_set(&c, "body-limit", "512KiB", &err), FL_OK);
    T_CHECK_EQ_INT(c.body_limit, 512 * 1024);
    T_CHECK_EQ_INT(fl_server_config_set(&c, "body-limit", "1000000", &err), FL_OK);
    T_CHECK_EQ_INT(c.body_limit, 1000000);
    T_CHECK(fl_server_config_set(&c, "body-limit", "2G", &err) != FL_OK);
    T_CHECK(fl_server_config_set(&c, "body-limit", "100", &err) != FL_OK);
    fl_server_config_fini(&c);
}

static void test_keys(void)
{
    struct fl_server_config c;
    struct fl_err err;
    bool help;
    clear_env();
    const char *kf = tmp_file("keys",
                              "# id secret [read-only]\n"
                              "AKIDFILE1 s3cr3t/+=\n"
                              "  AKIDFILE2\tother read-only\n",
                              0600);
    T_REQUIRE(kf);
    setenv("FACELINK_KEYS", "AKIDENV:envsecret", 1);
    char *a[] = {"serve", "--keys-file", (char *)kf, "--read-only-keys", "AKIDRO:ro1,AKIDRO2:ro2"};
    T_REQUIRE(fl_server_config_from_args(&c, 5, a, &help, &err) == FL_OK);
    T_CHECK_EQ_INT(c.n_keys, 5);
    int ro = 0, found = 0;
    for (size_t i = 0; i < c.n_keys; i++) {
        ro += c.keys[i].read_only;
        if (strcmp(c.keys[i].access_key_id, "AKIDFILE1") == 0) {
            T_CHECK_EQ_STR(c.keys[i].secret, "s3cr3t/+=");
            found++;
        }
        if (strcmp(c.keys[i].access_key_id, "AKIDFILE2") == 0) {
            T_CHECK(c.keys[i].read_only);
            found++;
        }
    }
    T_CHECK_EQ_INT(ro, 3);
    T_CHECK_EQ_INT(found, 2);
    fl_server_config_fini(&c);
    /* a --keys flag replaces the environment's keys (precedence) */
    char *b[] = {"serve", "--keys", "AKIDFLAG:f"};
    T_REQUIRE(fl_server_config_from_args(&c, 3, b, &help, &err) == FL_OK);
    T_CHECK_EQ_INT(c.n_keys, 1);
    T_CHECK_EQ_STR(c.keys[0].access_key_id, "AKIDFLAG");
    /* deep copy keeps everything */
    struct fl_server_config d;
    T_REQUIRE(fl__server_config_copy(&d, &c, &err) == FL_OK);
    T_CHECK_EQ_INT(d.n_keys, 1);
    T_CHECK(d.keys[0].secret != c.keys[0].secret);
    T_CHECK_EQ_STR(d.keys[0].secret, "f");
    T_CHECK_EQ_STR(d.listen, c.listen);
    fl_server_config_fini(&d);
    fl_server_config_fini(&c);
    /* malformed keys file */
    const char *bad = tmp_file("badkeys", "AKIDONLY\n", 0600);
    fl_server_config_init(&c);
    T_CHECK(fl_server_config_set(&c, "keys-file", bad, &err) != FL_OK);
    T_CHECK(strstr(err.msg, "badkeys:1") != NULL);
    fl_server_config_fini(&c);
    clear_env();
}

static void test_listen_parse(void)
{
    struct sockaddr_storage ss;
    unsigned len;
    bool lo;
    struct fl_err err;
    T_CHECK(fl__server_parse_listen("127.0.0.1:8085", &ss, &len, &lo, &err) == FL_OK && lo &&
            ss.ss_family == AF_INET && ntohs(((struct sockaddr_in *)&ss)->sin_port) == 8085);
    T_CHECK(fl__server_parse_listen("127.1.2.3:1", &ss, &len, &lo, &err) == FL_OK && lo);
    T_CHECK(fl__server_parse_listen("localhost:0", &ss, &len, &lo, &err) == FL_OK && lo);
    T_CHECK(fl__server_parse_listen("[::1]:80", &ss, &len, &lo, &err) == FL_OK && lo &&
            ss.ss_family == AF_INET6);
    T_CHECK(fl__server_parse_listen("0.0.0.0:80", &ss, &len, &lo, &err) == FL_OK && !lo);
    T_CHECK(fl__server_parse_listen("192.168.1.10:80", &ss, &len, &lo, &err) == FL_OK && !lo);
    T_CHECK(fl__server_parse_listen("[::]:80", &ss, &len, &lo, &err) == FL_OK && !lo);
    static const char *const bad[] = {
        "",       "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999", "example.com:80",
        "::1:80", "[::1]80",   "1.2.3.4:8x"};
    for (size_t i = 0; i < FL_ARRAY_LEN(bad); i++)
        T_CHECK(fl__server_parse_listen(bad[i], &ss, &len, &lo, &err) == FL_ERR_INVALID_ARG);
}

static void test_loopback_rule(void)
{
    struct fl_server_config c;
    struct fl_err err;
    fl_server_config_init(&c);
    fl_server_config_set(&c, "listen", "10.0.0.1:8085", NULL);
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_ERR_INVALID_ARG);
    T_CHECK(strstr(err.msg, "refusing") != NULL);
    fl_server_config_set(&c, "read-only-keys", "AK:s", NULL);
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_OK);
    c.auth_off = true;
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_ERR_INVALID_ARG);
    fl_server_config_set(&c, "listen", "127.0.0.1:8085", NULL);
    T_CHECK_EQ_INT(fl_server_config_validate(&c, &err), FL_OK);
    fl_server_config_fini(&c);
}

/* The whole pipeline with each allocation failed in turn: an error or
 * success, no crash, no leak. */
static void test_alloc_failures(void)
{
    struct fl_server_config c;
    struct fl_err err;
    bool help;
    clear_env();
    const char *path = tmp_file("a.conf", "listen = 127.0.0.1:7003\nkeys = AK1:s1,AK2:s2\n", 0644);
    char p[600];
    snprintf(p, sizeof(p), "%s", path);
    char *a[] = {"serve", "--config", p, "--read-only-keys", "AK3:s3", "--data-dir", "/x"};
    long base = fl_alloc_live();
    int n;
    for (n = 1; n < 2000; n++) {
        fl_test_fail_alloc_at(n);
        enum fl_status st = fl_server_config_from_args(&c, 7, a, &help, &err);
        if (st == FL_OK)
            st = fl_server_config_validate(&c, &err);
        long injected = fl_test_injected();
        fl_test_fail_alloc_at(0);
        fl_server_config_fini(&c);
        T_CHECK_EQ_INT(fl_alloc_live(), base);
        if (injected == 0) {
            T_CHECK_EQ_INT(st, FL_OK);
            break;
        }
    }
    T_CHECK(n > 5 && n < 2000);
}

static void test_no_leaks(void)
{
    T_CHECK_EQ_INT(fl_alloc_live(), 0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    fl_core_init();
    fl_log_setup(FL_LOG_OFF, false);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/fl-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("# mkdtemp failed\n");
        return 1;
    }
    T_RUN(test_option_table_documented);
    T_RUN(test_defaults);
    T_RUN(test_precedence);
    T_RUN(test_help_and_errors);
    T_RUN(test_sizes);
    T_RUN(test_collection_metrics_option);
    T_RUN(test_keys);
    T_RUN(test_listen_parse);
    T_RUN(test_loopback_rule);
    T_RUN(test_alloc_failures);
    T_RUN(test_no_leaks);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", tmpdir);
    return t_done();
}
