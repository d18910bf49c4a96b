/*
 * uuid.c: RFC 4122 UUIDs. Version 4 from OpenSSL's RAND_bytes (FaceIds),
 * version 5 (SHA-1, name-based) for ImageIds: the same image bytes always
 * give the same ImageId, as Rekognition does.
 */
#include "core/core.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

static void format_uuid(const uint8_t b[16], char out[FL_UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* Parse a canonical UUID (either case) into 16 bytes. */
static bool parse_uuid(const char *s, uint8_t b[16])
{
    size_t i = 0, n = 0;
    if (strlen(s) != FL_UUID_STR_LEN)
        return false;
    while (n < 16) {
        int hi, lo;
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        hi = fl_hex_digit(s[i]);
        lo = fl_hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        b[n++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return true;
}

bool fl_uuid_valid(const char *s)
{
    uint8_t b[16];
    for (const char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return false;
    return parse_uuid(s, b);
}

enum fl_status fl_uuid_v4(char out[FL_UUID_STR_LEN + 1], struct fl_err *err)
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        return fl_err_set(err, FL_ERR_INTERNAL, "RAND_bytes failed");
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    format_uuid(b, out);
    return FL_OK;
}

enum fl_status fl_uuid_v5(const char *ns, const void *name, size_t name_len,
                          char out[FL_UUID_STR_LEN + 1], struct fl_err *err)
{
    uint8_t nsb[16], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_MD_CTX *ctx;
    int ok;

    if (!parse_uuid(ns, nsb))
        return fl_err_set(err, FL_ERR_INVALID_ARG, "bad namespace UUID '%s'", ns);
    ctx = EVP_MD_CTX_new();
    if (!ctx)
        return fl_err_set(err, FL_ERR_NOMEM, "EVP_MD_CTX_new failed");
    ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) && EVP_DigestUpdate(ctx, nsb, 16) &&
         EVP_DigestUpdate(ctx, name, name_len) && EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (!ok || md_len < 16)
        return fl_err_set(err, FL_ERR_INTERNAL, "SHA-1 failed");
    md[6] = (uint8_t)((md[6] & 0x0f) | 0x50);
    md[8] = (uint8_t)((md[8] & 0x3f) | 0x80);
    format_uuid(md, out);
    return FL_OK;
}
