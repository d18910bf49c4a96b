/*
 * base64.c: RFC 4648 base64 with padding (the encoding of JSON blobs in AWS
 * JSON 1.1, e.g. Image.Bytes). The decoder is strict: length a multiple of 4,
 * padding only at the end, no whitespace, no other alphabet. A strict decoder
 * gives a clear error instead of silently decoding garbage.
 */
#include "core/core.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t fl_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t fl_base64_decoded_max(size_t len)
{
    return len / 4 * 3;
}

void fl_base64_encode(const void *in, size_t n, char *out)
{
    const uint8_t *p = in;
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

enum fl_status fl_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len,
                                struct fl_err *err)
{
    size_t o = 0;
    if (len % 4 != 0)
        return fl_err_set(err, FL_ERR_INVALID_ARG,
                          "base64 length %zu is not a multiple of 4", len);
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        bool last = i + 4 == len;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad)
                return fl_err_set(err, FL_ERR_INVALID_ARG, "base64 padding in the middle");
            v[k] = b64_value(c);
            if (v[k] < 0)
                return fl_err_set(err, FL_ERR_INVALID_ARG,
                                  "invalid base64 character at offset %zu", i + (size_t)k);
        }
        {
            uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                         (uint32_t)v[3];
            out[o++] = (uint8_t)(w >> 16);
            if (pad < 2)
                out[o++] = (uint8_t)(w >> 8);
            if (pad < 1)
                out[o++] = (uint8_t)w;
        }
    }
    *out_len = o;
    return FL_OK;
}
