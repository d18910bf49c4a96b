/* t_img.c: see t_img.h. */
#include "t_img.h"

int t_load_image(const char *path, struct fl_image *img)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    struct fl_img_decode_opts o;
    int ok;
    fl_img_decode_opts_default(&o);
    if (fl_file_read(path, 64u << 20, &buf, &n, NULL) != FL_OK)
        return 0;
    ok = fl_img_decode(buf, n, &o, img, NULL, NULL) == FL_OK;
    fl_free(buf);
    return ok;
}
