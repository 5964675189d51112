// Drawing on RGB images for inspection tools (`masa views`, tracking demos): box outlines,
// small text (digits, a few letters) and a stable colour per instance id.
#ifndef MASA_DRAW_H
#define MASA_DRAW_H

#include <stdint.h>

#include "data/image.h"

// A bright colour that depends only on the id.
void draw_id_colour(int64_t id, uint8_t rgb[3]);
// Outline of the box (x1, y1, x2, y2) in continuous pixel coordinates, `thick` pixels inside it.
void draw_box(image_u8 *im, double x1, double y1, double x2, double y2, const uint8_t rgb[3], int thick);
// Text with a 3x5 pixel font magnified `scale` times, on a dark backing for contrast; top-left at
// (x, y). Characters without a glyph are drawn as blanks. Returns the width drawn.
int draw_text(image_u8 *im, int x, int y, const char *text, const uint8_t rgb[3], int scale);
// Copies src into dst with its top-left corner at (x, y) (clipped).
void draw_paste(image_u8 *dst, const image_u8 *src, int x, int y);

#endif
