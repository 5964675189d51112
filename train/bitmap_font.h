// A 5x7 pixel font covering printable ASCII, for labels on plots (draw.h's 3x5 font has digits
// only). Each character advances 6 pixels (times scale); lines are 7 pixels high (times scale).
#ifndef MASA_BITMAP_FONT_H
#define MASA_BITMAP_FONT_H

#include <stdint.h>

#include "data/image.h"

#define FONT_W 5
#define FONT_H 7
#define FONT_ADVANCE 6

// Width in pixels of text drawn at `scale` (no trailing gap).
int font_text_width(const char *text, int scale);
// Draws text with its top-left corner at (x, y), clipped to the image; no background. Characters
// outside printable ASCII are drawn as '?'.
void font_draw_text(image_u8 *im, int x, int y, const char *text, const uint8_t rgb[3], int scale);

#endif
