/*
 * exif.c: EXIF orientation of a JPEG, through libexif.
 *
 * What: find the first APP1 segment that starts with "Exif\0\0" among the
 * markers before the first SOS, hand exactly that payload to libexif, and
 * read the Orientation tag (0x0112) of IFD0.
 *
 * Why our own marker walk: libexif can search a whole JPEG itself, but then
 * it scans bytes we have not bounded; walking the segment lengths here keeps
 * every read inside buf and hands libexif one bounded slice.
 *
 * Policy: EXIF is advisory. Any failure (no segment, truncated or corrupt
 * TIFF structure, wrong type or count, value outside 1..8, out of memory)
 * gives orientation 1. It never fails the decode.
 *
 * libexif is told to use our allocator (exif_mem_new) and not to "fix" the
 * data to the specification on load (that adds entries we never read).
 *
 * Threading: reentrant; libexif keeps no global state on this path.
 */
#include "img/img_int.h"

#include <libexif/exif-data.h>
#include <string.h>

static void *exif_alloc(ExifLong s)
{
    return fl_calloc((size_t)s ? (size_t)s : 1, 1); /* libexif expects zeroed memory */
}
static void *exif_realloc(void *p, ExifLong s)
{
    return fl_realloc(p, (size_t)s);
}
static void exif_free(void *p)
{
    fl_free(p);
}

/* Orientation from an APP1 payload that starts with "Exif\0\0". */
static int orientation_from_app1(const uint8_t *p, size_t len)
{
    int o = 1;
    ExifMem *mem = NULL;
    ExifData *d = NULL;
    ExifEntry *e;

    if (len > 0xffff) /* an APP1 payload cannot be larger */
        return 1;
    mem = exif_mem_new(exif_alloc, exif_realloc, exif_free);
    if (!mem)
        goto out;
    d = exif_data_new_mem(mem);
    if (!d)
        goto out;
    exif_data_unset_option(d, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(d, p, (unsigned int)len);
    e = exif_content_get_entry(d->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2) {
        int v = exif_get_short(e->data, exif_data_get_byte_order(d));
        if (v >= 1 && v <= 8)
            o = v;
    }
out:
    if (d)
        exif_data_unref(d);
    if (mem)
        exif_mem_unref(mem);
    return o;
}

int fl__img_jpeg_exif_orientation(const uint8_t *buf, size_t n)
{
    size_t pos = 2; /* after SOI */

    if (n < 4 || buf[0] != 0xff || buf[1] != 0xd8)
        return 1;
    while (pos + 4 <= n) {
        uint8_t m;
        size_t len;
        if (buf[pos] != 0xff)
            return 1;                       /* not at a marker: malformed, give up */
        while (pos < n && buf[pos] == 0xff) /* fill bytes */
            pos++;
        if (pos >= n)
            return 1;
        m = buf[pos++];
        if (m == 0xd9 || m == 0xda) /* EOI, SOS: no EXIF before the data */
            return 1;
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd8)) /* TEM, RSTn, SOI: no length */
            continue;
        if (pos + 2 > n)
            return 1;
        len = ((size_t)buf[pos] << 8) | buf[pos + 1];
        if (len < 2 || len > n - pos)
            return 1;
        if (m == 0xe1 && len - 2 >= 6 && memcmp(buf + pos + 2, "Exif\0\0", 6) == 0)
            return orientation_from_app1(buf + pos + 2, len - 2);
        pos += len;
    }
    return 1;
}
