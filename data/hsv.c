// YOLOX HSV jitter with OpenCV-compatible 8-bit conversions (see hsv.h).
#include "data/hsv.h"

#include <math.h>
#include <pthread.h>

#define HSV_SHIFT 12

static int sdiv_table[256], hdiv_table[256];
// HSV -> RGB: per hue its sector and fraction (OpenCV's float h * 6/180, fmod 6, floor), and
// the 8-bit saturation and value as floats; the per-pixel work is then three products.
static int h_sector[180];
static float h_frac[180], unit[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
  sdiv_table[0] = hdiv_table[0] = 0;
  for (int i = 1; i < 256; i++) {
    sdiv_table[i] = (int)lrint((double)(255 << HSV_SHIFT) / i);
    hdiv_table[i] = (int)lrint((double)(180 << HSV_SHIFT) / (6.0 * i));
  }
  for (int i = 0; i < 256; i++) unit[i] = (float)i * (1.f / 255.f);
  for (int h = 0; h < 180; h++) {
    float f = fmodf((float)h * (6.f / 180.f), 6.f);
    if (f < 0) f += 6;
    int sector = (int)floorf(f);
    f -= (float)sector;
    if ((unsigned)sector >= 6u) sector = 0, f = 0.f;
    h_sector[h] = sector, h_frac[h] = f;
  }
}

void hsv_init(void) { pthread_once(&tables_once, build_tables); }

static inline void rgb_to_hsv(const uint8_t rgb[3], int hsv[3]) {
  int r = rgb[0], g = rgb[1], b = rgb[2];
  int v = b, vmin = b;
  if (g > v) v = g;
  if (r > v) v = r;
  if (g < vmin) vmin = g;
  if (r < vmin) vmin = r;
  int diff = v - vmin;
  int s = (diff * sdiv_table[v] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
  int h;
  if (v == r) h = g - b;
  else if (v == g) h = b - r + 2 * diff;
  else h = r - g + 4 * diff;
  h = (h * hdiv_table[diff] + (1 << (HSV_SHIFT - 1))) >> HSV_SHIFT;
  if (h < 0) h += 180;
  hsv[0] = h, hsv[1] = s, hsv[2] = v;
}

// OpenCV 4.10's 8-bit HSV->BGR truncates the float result (measured against cv2: rounding
// disagrees on half of all values, truncation on none of the S, V grid).
static inline uint8_t trunc_u8(float x) {
  int i = (int)x;
  return (uint8_t)(i < 0 ? 0 : i > 255 ? 255 : i);
}

// h in [0, 180), s and v in [0, 255].
static inline void hsv_to_rgb_fast(int h, int s8, int v8, uint8_t rgb[3]) {
  float s = unit[s8], v = unit[v8];
  if (s8 == 0) {
    rgb[0] = rgb[1] = rgb[2] = trunc_u8(v * 255.f);
    return;
  }
  // (b, g, r) pick from {v, v(1-s), v(1-sh), v(1-s(1-h))} by sector.
  static const int sector_bgr[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
  float f = h_frac[h];
  float tab[4] = {v, v * (1.f - s), v * (1.f - s * f), v * (1.f - s * (1.f - f))};
  const int *sec = sector_bgr[h_sector[h]];
  rgb[0] = trunc_u8(tab[sec[2]] * 255.f), rgb[1] = trunc_u8(tab[sec[1]] * 255.f);
  rgb[2] = trunc_u8(tab[sec[0]] * 255.f);
}

void hsv_from_rgb(const uint8_t rgb[3], int hsv[3]) {
  hsv_init();
  rgb_to_hsv(rgb, hsv);
}

void hsv_to_rgb(const int hsv[3], uint8_t rgb[3]) {
  hsv_init();
  hsv_to_rgb_fast(hsv[0], hsv[1], hsv[2], rgb);
}

void hsv_jitter_rgb(uint8_t *rgb, int64_t n, const int gain[3]) {
  hsv_init();  // zero gains still round-trip through 8-bit HSV, as the official step does
  int dh = gain[0] % 180;
  if (dh < 0) dh += 180;
  for (int64_t i = 0; i < n; i++) {
    uint8_t *p = rgb + 3 * i;
    int hsv[3];
    rgb_to_hsv(p, hsv);
    int h = hsv[0] + dh;
    if (h >= 180) h -= 180;
    int s = hsv[1] + gain[1], v = hsv[2] + gain[2];
    hsv_to_rgb_fast(h, s < 0 ? 0 : s > 255 ? 255 : s, v < 0 ? 0 : v > 255 ? 255 : v, p);
  }
}
