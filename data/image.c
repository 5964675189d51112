// Image decode/encode (image.h). JPEG through the TurboJPEG 2.x API (libjpeg-turbo 2.1 on
// Debian 12): default (accurate integer) IDCT and fancy upsampling, the same choices as OpenCV
// and PIL. A decoder handle is made per call, so every function is thread-safe.
// Corrupt data: libjpeg-turbo reports truncated or damaged entropy data as a *warning* and fills
// the rest of the image with grey; we turn every warning into an error except "extraneous bytes
// before marker", which real cameras produce and which loses no pixels.
// PNG through libpng's simplified API, read as RGBA with the alpha dropped (as OpenCV and PIL's
// convert("RGB") do, without compositing).
#include "data/image.h"

#include <fcntl.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <errno.h>

#include "core/check.h"
#include "core/error.h"

#define IMAGE_MAX_PIXELS (1LL << 28)  // guards against absurd sizes in corrupt headers

void image_free(image_u8 *im) {
  free(im->px);
  im->px = NULL;
  im->h = im->w = 0;
}

image_u8 image_alloc(int h, int w) {
  image_u8 im = {h, w, NULL};
  im.px = mallocCheck((size_t)(h > 0 ? h : 1) * (size_t)(w > 0 ? w : 1) * 3);
  return im;
}

static int is_jpeg(const uint8_t *b, size_t n) { return n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff; }
static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
static int is_png(const uint8_t *b, size_t n) { return n >= 8 && !memcmp(b, png_sig, 8); }

static int unknown_format(const uint8_t *buf, size_t n, const char *what) {
  if (n == 0) return masa_error("%s: image data is empty (0 bytes)", what);
  return masa_error("%s: not a JPEG or PNG (first bytes %02x %02x %02x)", what, buf[0],
                    n > 1 ? buf[1] : 0, n > 2 ? buf[2] : 0);
}

static int size_ok(int h, int w, const char *what) {
  if (h <= 0 || w <= 0 || (int64_t)h * w > IMAGE_MAX_PIXELS)
    return masa_error("%s: image size %d x %d is invalid or larger than 2^28 pixels", what, h, w);
  return MASA_OK;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int png_probe(const uint8_t *buf, size_t n, int *h, int *w, const char *what) {
  if (n < 33 || be32(buf + 8) != 13 || memcmp(buf + 12, "IHDR", 4))
    return masa_error("%s: PNG header is truncated or has no IHDR chunk", what);
  uint32_t pw = be32(buf + 16), ph = be32(buf + 20);
  if (pw > 0x7fffffff || ph > 0x7fffffff) return masa_error("%s: PNG size out of range", what);
  *w = (int)pw;
  *h = (int)ph;
  return size_ok(*h, *w, what);
}

static int jpeg_header(tjhandle tj, const uint8_t *buf, size_t n, int *h, int *w, int *cs,
                       const char *what) {
  int sub = 0;
  // TurboJPEG leaves the outputs untouched when the data ends before the frame header.
  *h = *w = 0;
  if (tjDecompressHeader3(tj, buf, (unsigned long)n, w, h, &sub, cs) != 0)
    return masa_error("%s: corrupt JPEG header: %s", what, tjGetErrorStr2(tj));
  if (*h <= 0 || *w <= 0)  // the data ended before the frame header
    return masa_error("%s: corrupt or truncated JPEG header (no frame size)", what);
  return size_ok(*h, *w, what);
}

int image_probe(const uint8_t *buf, size_t n, int *h, int *w, const char *what) {
  *h = *w = 0;
  if (is_png(buf, n)) return png_probe(buf, n, h, w, what);
  if (!is_jpeg(buf, n)) return unknown_format(buf, n, what);
  tjhandle tj = tjInitDecompress();
  if (!tj) masa_die(__FILE__, __LINE__, "tjInitDecompress()", "TurboJPEG", tjGetErrorStr2(NULL));
  int cs, rc = jpeg_header(tj, buf, n, h, w, &cs, what);
  tjDestroy(tj);
  return rc;
}

int image_check_complete(const uint8_t *buf, size_t n, const char *what) {
  if (is_png(buf, n)) {
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    if (n < 20 || memcmp(buf + n - 12, iend, 12))
      return masa_error("%s: truncated PNG (no IEND chunk at the end)", what);
    return MASA_OK;
  }
  if (!is_jpeg(buf, n)) return unknown_format(buf, n, what);
  // A complete JPEG ends with the EOI marker FF D9, possibly followed by a little padding.
  size_t lo = n > 1024 ? n - 1024 : 0;
  for (size_t i = n - 1; i > lo; i--)
    if (buf[i] == 0xd9 && buf[i - 1] == 0xff) return MASA_OK;
  return masa_error("%s: truncated JPEG (no end-of-image marker)", what);
}

// Adobe CMYK JPEGs store inverted ink values; with those, RGB = C*K/255 (as OpenCV and PIL).
static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, int64_t npx) {
  for (int64_t i = 0; i < npx; i++) {
    unsigned k = cmyk[4 * i + 3];
    for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)((cmyk[4 * i + c] * k + 127) / 255);
  }
}

static int jpeg_decode(const uint8_t *buf, size_t n, int denom, image_u8 *out, const char *what) {
  tjhandle tj = tjInitDecompress();
  if (!tj) masa_die(__FILE__, __LINE__, "tjInitDecompress()", "TurboJPEG", tjGetErrorStr2(NULL));
  int h, w, cs;
  if (jpeg_header(tj, buf, n, &h, &w, &cs, what) != MASA_OK) {
    tjDestroy(tj);
    return MASA_ERR;
  }
  tjscalingfactor f = {1, denom};
  int sh = TJSCALED(h, f), sw = TJSCALED(w, f);
  int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
  uint8_t *dst = mallocCheck((size_t)sh * sw * (cmyk ? 4 : 3));
  int rc = tjDecompress2(tj, buf, (unsigned long)n, dst, sw, 0, sh, cmyk ? TJPF_CMYK : TJPF_RGB, 0);
  if (rc != 0) {
    const char *msg = tjGetErrorStr2(tj);
    int benign = tjGetErrorCode(tj) == TJERR_WARNING && strstr(msg, "extraneous bytes");
    if (!benign) {
      masa_error("%s: corrupt or truncated JPEG: %s", what, msg);
      free(dst);
      tjDestroy(tj);
      return MASA_ERR;
    }
  }
  tjDestroy(tj);
  out->h = sh;
  out->w = sw;
  if (cmyk) {
    out->px = mallocCheck((size_t)sh * sw * 3);
    cmyk_to_rgb(dst, out->px, (int64_t)sh * sw);
    free(dst);
  } else {
    out->px = dst;
  }
  return MASA_OK;
}

static int png_decode(const uint8_t *buf, size_t n, image_u8 *out, const char *what) {
  int h, w;
  if (png_probe(buf, n, &h, &w, what) != MASA_OK) return MASA_ERR;
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, buf, n))
    return masa_error("%s: corrupt PNG: %s", what, img.message);
  img.format = PNG_FORMAT_RGBA;
  uint8_t *rgba = mallocCheck(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, NULL, rgba, 0, NULL)) {
    masa_error("%s: corrupt or truncated PNG: %s", what, img.message);
    png_image_free(&img);
    free(rgba);
    return MASA_ERR;
  }
  int64_t npx = (int64_t)img.width * img.height;
  out->h = (int)img.height;
  out->w = (int)img.width;
  out->px = mallocCheck((size_t)npx * 3);
  for (int64_t i = 0; i < npx; i++) memcpy(out->px + 3 * i, rgba + 4 * i, 3);
  free(rgba);
  return MASA_OK;
}

int image_decode(const uint8_t *buf, size_t n, int scale_denom, image_u8 *out, const char *what) {
  memset(out, 0, sizeof *out);
  if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
    return masa_error("%s: scale_denom %d is not 1, 2, 4 or 8", what, scale_denom);
  if (is_jpeg(buf, n)) return jpeg_decode(buf, n, scale_denom, out, what);
  if (is_png(buf, n)) return png_decode(buf, n, out, what);
  return unknown_format(buf, n, what);
}

int image_pick_denom(double needed_scale) {
  int best = 1;
  for (int d = 2; d <= 8; d *= 2)
    if (1.0 / d >= needed_scale) best = d;
  return best;
}

int image_encode_jpeg(const image_u8 *im, int quality, uint8_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (quality < 1 || quality > 100) return masa_error("JPEG quality %d is not in 1..100", quality);
  if (size_ok(im->h, im->w, "image_encode_jpeg") != MASA_OK) return MASA_ERR;
  tjhandle tj = tjInitCompress();
  if (!tj) masa_die(__FILE__, __LINE__, "tjInitCompress()", "TurboJPEG", tjGetErrorStr2(NULL));
  unsigned char *jbuf = NULL;
  unsigned long jn = 0;
  if (tjCompress2(tj, im->px, im->w, 0, im->h, TJPF_RGB, &jbuf, &jn, TJSAMP_420, quality, 0) != 0)
    masa_die(__FILE__, __LINE__, "tjCompress2()", "TurboJPEG", tjGetErrorStr2(tj));
  *out = mallocCheck(jn);
  memcpy(*out, jbuf, jn);
  *n = jn;
  tjFree(jbuf);
  tjDestroy(tj);
  return MASA_OK;
}

static int write_all(const char *path, const uint8_t *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return masa_error("%s: cannot create file (%s)", path, strerror(errno));
  size_t wrote = fwrite(buf, 1, n, f);
  int bad = wrote != n;
  if (fclose(f) != 0) bad = 1;
  if (bad) return masa_error("%s: write failed (%s)", path, strerror(errno));
  return MASA_OK;
}

int image_write_jpeg(const image_u8 *im, int quality, const char *path) {
  uint8_t *buf;
  size_t n;
  if (image_encode_jpeg(im, quality, &buf, &n) != MASA_OK) return MASA_ERR;
  int rc = write_all(path, buf, n);
  free(buf);
  return rc;
}

int image_write_png(const image_u8 *im, const char *path) {
  if (size_ok(im->h, im->w, path) != MASA_OK) return MASA_ERR;
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)im->w;
  img.height = (png_uint_32)im->h;
  img.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&img, path, 0, im->px, 0, NULL))
    return masa_error("%s: cannot write PNG: %s", path, img.message);
  return MASA_OK;
}

int file_read_all(const char *path, uint8_t **buf, size_t *n) {
  *buf = NULL;
  *n = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return masa_error("%s: cannot open (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return masa_error("%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size, got = 0;
  uint8_t *b = mallocCheck(size + 1);  // +1: callers may NUL-terminate text
  while (got < size) {
    ssize_t r = read(fd, b + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      int e = errno;
      close(fd);
      free(b);
      return masa_error("%s: read failed after %zu of %zu bytes (%s)", path, got, size,
                        r < 0 ? strerror(e) : "file shrank");
    }
    got += (size_t)r;
  }
  close(fd);
  b[size] = 0;
  *buf = b;
  *n = size;
  return MASA_OK;
}
