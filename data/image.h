// 8-bit images, interleaved RGB (HWC). JPEG through TurboJPEG (with DCT-domain downscaling by
// 1/2, 1/4, 1/8 when requested; grayscale and CMYK sources converted to RGB), PNG through libpng.
// Decoders report corrupt input through masa_error naming `what` (a file or archive member).
#ifndef MASA_IMAGE_H
#define MASA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int h, w;
  uint8_t *px;  // (h, w, 3) RGB
} image_u8;

void image_free(image_u8 *im);
image_u8 image_alloc(int h, int w);
// Size of a JPEG or PNG without decoding it.
int image_probe(const uint8_t *buf, size_t n, int *h, int *w, const char *what);
// Decodes JPEG or PNG (sniffed). scale_denom in {1, 2, 4, 8}: JPEGs are decoded at
// ceil(size / denom) in the DCT domain; PNGs ignore it (full size). The decoded size is in out.
int image_decode(const uint8_t *buf, size_t n, int scale_denom, image_u8 *out, const char *what);
// Largest denom in {1, 2, 4, 8} such that decoding at 1/denom still gives at least
// `needed_scale` * the source size in both dims (needed_scale = view pixels per source pixel).
int image_pick_denom(double needed_scale);
int image_encode_jpeg(const image_u8 *im, int quality, uint8_t **out, size_t *n);
int image_write_jpeg(const image_u8 *im, int quality, const char *path);
int image_write_png(const image_u8 *im, const char *path);
// Reads a whole file into memory (malloc'd; a NUL byte follows the n bytes, for text).
int file_read_all(const char *path, uint8_t **buf, size_t *n);
// Cheap truncation check without decoding: a JPEG must end with its end-of-image marker (a
// little trailing padding allowed), a PNG with its IEND chunk. MASA_ERR naming `what` otherwise.
int image_check_complete(const uint8_t *buf, size_t n, const char *what);

#endif
