/* standalone_main.c: replays fuzz inputs through a fuzz target without
 * libFuzzer, so the committed corpora run as regression tests under any
 * compiler (libvips' standalone engine). Usage: fuzz_x FILE... ; prints the
 * standard closing line: one test per input, passed when it returns. A crash
 * or sanitizer report ends the process and `make test` counts a failure. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    int n = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        uint8_t *buf;
        long len;
        if (!f || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            printf("not ok %d - %s (unreadable)\n", ++n, argv[i]);
            failed++;
            if (f)
                fclose(f);
            continue;
        }
        buf = malloc((size_t)len + 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
            printf("not ok %d - %s (read failed)\n", ++n, argv[i]);
            failed++;
        } else {
            LLVMFuzzerTestOneInput(buf, (size_t)len);
            printf("ok %d - %s\n", ++n, argv[i]);
        }
        free(buf);
        fclose(f);
    }
    printf("1..%d\ntests: %d passed, %d failed, 0 skipped\n", n, n - failed, failed);
    return failed ? 1 : 0;
}
