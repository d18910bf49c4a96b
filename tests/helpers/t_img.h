/* t_img.h: read an image file for a test. */
#ifndef T_IMG_H
#define T_IMG_H
#include "img/img.h"

/* Decode the file at path (up to 64 MiB) with the default decode options
 * into img (caller fl_image_free()s it). 1 on success, 0 if it cannot be
 * read or decoded. */
int t_load_image(const char *path, struct fl_image *img);
#endif
