/*
 * log.c: levelled logging to stderr, as plain text or JSON lines.
 *
 * The level and format are set once at start-up (fl_log_setup) before threads
 * start; after that the logger only reads them. Each message is formatted into
 * a local buffer and written with one fputs under stdio's own lock, so lines
 * from different threads never interleave.
 */
#include "core/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static enum fl_log_level log_level = FL_LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void fl_log_setup(enum fl_log_level level, bool json_lines)
{
    log_level = level;
    log_json = json_lines;
}

bool fl_log_level_parse(const char *s, enum fl_log_level *out)
{
    for (size_t i = 0; i < FL_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum fl_log_level)i;
            return true;
        }
    }
    return false;
}

/* Escape s into out as a JSON string body (without quotes). */
static void json_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void fl_log(enum fl_log_level level, const char *fmt, ...)
{
    char msg[1024], line[2300], ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;

    if (level < log_level || level >= FL_LOG_OFF)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_json) {
        char esc[2100];
        json_escape(msg, esc, sizeof(esc));
        snprintf(line, sizeof(line), "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
                 now.tv_nsec / 1000000, level_names[level], esc);
    } else {
        snprintf(line, sizeof(line), "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000,
                 level_names[level], msg);
    }
    fputs(line, stderr);
}
