/*
 * fuzz_img_decode.c: libFuzzer target for the image decoders.
 *
 * Feeds arbitrary bytes to fl_img_probe() and fl_img_decode() with a small
 * pixel cap (so the fuzzer explores parsing, not big allocations) and no
 * minimum side (so tiny images reach the pixel decoders), sometimes with DCT
 * scaling and sometimes without orientation; on success it runs the geometry
 * on the result. Also drives the JPEG EXIF walker directly. Invariants
 * checked: status codes are in range, a successful decode gives a
 * consistent image, and nothing leaks through fl_malloc (ASan/LSan cover
 * the libraries' own allocations).
 *
 * Build (not part of `make`; the integrator wires `make fuzz`):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_DEFAULT_SOURCE \
 *     -Iinclude -Isrc $(pkg-config --cflags jansson libturbojpeg spng libwebp libexif libcrypto) \
 *     tests/fuzz/fuzz_img_decode.c $(find src/core src/img -name '*.c') \
 *     $(pkg-config --libs jansson libturbojpeg spng libwebp libexif libcrypto) -lm -lpthread \
 *     -o build-fuzz/fuzz_img_decode
 *   build-fuzz/fuzz_img_decode -dict=tests/fuzz/img_decode.dict tests/fuzz/corpus/img_decode
 */
#include "img/img_int.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fl_core_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fl_img_decode_opts o;
    struct fl_img_info info;
    struct fl_image img = {0}, tmp = {0};
    struct fl_err err;
    enum fl_status rc;
    long live0 = fl_alloc_live();
    uint8_t knob = size ? data[size - 1] : 0; /* varies options with the input */

    fl_img_decode_opts_default(&o);
    o.max_pixels = 1u << 20;
    o.min_side = 0;
    o.max_side = (knob & 1) ? 16 + (knob >> 2) : 0;
    o.no_orient = (knob & 2) != 0;

    rc = fl_img_probe(data, size, &o, &info, &err);
    if (rc < FL_OK || rc >= FL_STATUS_COUNT_)
        abort();
    (void)fl__img_jpeg_exif_orientation(data, size);

    rc = fl_img_decode(data, size, &o, &img, &info, &err);
    if (rc < FL_OK || rc >= FL_STATUS_COUNT_)
        abort();
    if (rc == FL_OK) {
        if (img.w < 1 || img.h < 1 || !img.px || (uint64_t)img.w * img.h > o.max_pixels)
            abort();
        if (info.orientation < 1 || info.orientation > 8)
            abort();
        if (fl_img_resize_bilinear(&img, 7, 5, &tmp, NULL) == FL_OK)
            fl_image_free(&tmp);
        if (fl_img_resize_area(&img, 3, 4, &tmp, NULL) == FL_OK)
            fl_image_free(&tmp);
        if (fl_img_crop_square(&img, 1, 1, img.w, img.h / 2 + 1, true, &tmp, NULL) == FL_OK)
            fl_image_free(&tmp);
        fl_image_free(&img);
    }
    if (fl_alloc_live() != live0)
        abort(); /* leak through fl_malloc */
    return 0;
}
