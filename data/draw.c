// Box outlines, a tiny bitmap font and id colours (see draw.h).
#include "data/draw.h"

#include <math.h>
#include <string.h>

void draw_id_colour(int64_t id, uint8_t rgb[3]) {
  uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  double hue = (double)(h % 360), s = 0.75 + 0.25 * (double)((h >> 12) % 100) / 100.0, v = 1.0;
  double c = v * s, x = c * (1 - fabs(fmod(hue / 60.0, 2) - 1)), m = v - c;
  double r = 0, g = 0, b = 0;
  int sector = (int)(hue / 60);
  switch (sector) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
  }
  rgb[0] = (uint8_t)lround(255 * (r + m)), rgb[1] = (uint8_t)lround(255 * (g + m));
  rgb[2] = (uint8_t)lround(255 * (b + m));
}

static void put(image_u8 *im, int x, int y, const uint8_t rgb[3]) {
  if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
  memcpy(im->px + ((int64_t)y * im->w + x) * 3, rgb, 3);
}

void draw_box(image_u8 *im, double x1, double y1, double x2, double y2, const uint8_t rgb[3], int thick) {
  int a = (int)floor(x1), b = (int)floor(y1), c = (int)ceil(x2) - 1, d = (int)ceil(y2) - 1;
  if (c < a) c = a;
  if (d < b) d = b;
  for (int t = 0; t < thick; t++) {
    for (int x = a; x <= c; x++) put(im, x, b + t, rgb), put(im, x, d - t, rgb);
    for (int y = b; y <= d; y++) put(im, a + t, y, rgb), put(im, c - t, y, rgb);
  }
}

// 3x5 glyphs, one row per 3 bits (MSB = left column).
static const char *glyph(char ch) {
  static const char digits[10][5] = {{7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7},
                                     {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1},
                                     {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};
  static const char m[5] = {0, 0, 7, 7, 5}, hash[5] = {5, 7, 5, 7, 5}, dash[5] = {0, 0, 7, 0, 0};
  if (ch >= '0' && ch <= '9') return digits[ch - '0'];
  if (ch == 'm') return m;
  if (ch == '#') return hash;
  if (ch == '-') return dash;
  return NULL;
}

int draw_text(image_u8 *im, int x, int y, const char *text, const uint8_t rgb[3], int scale) {
  static const uint8_t dark[3] = {0, 0, 0};
  int n = (int)strlen(text), w = n * 4 * scale + scale, h = 7 * scale;
  for (int yy = y; yy < y + h; yy++)
    for (int xx = x; xx < x + w; xx++) put(im, xx, yy, dark);
  for (int i = 0; i < n; i++) {
    const char *g = glyph(text[i]);
    if (!g) continue;
    for (int r = 0; r < 5; r++)
      for (int c = 0; c < 3; c++)
        if (g[r] & (4 >> c))
          for (int sy = 0; sy < scale; sy++)
            for (int sx = 0; sx < scale; sx++)
              put(im, x + scale + (4 * i + c) * scale + sx, y + scale + r * scale + sy, rgb);
  }
  return w;
}

void draw_paste(image_u8 *dst, const image_u8 *src, int x, int y) {
  for (int r = 0; r < src->h; r++) {
    int yy = y + r;
    if (yy < 0 || yy >= dst->h) continue;
    for (int c = 0; c < src->w; c++) {
      int xx = x + c;
      if (xx < 0 || xx >= dst->w) continue;
      memcpy(dst->px + ((int64_t)yy * dst->w + xx) * 3, src->px + ((int64_t)r * src->w + c) * 3, 3);
    }
  }
}
