// Appearance embedders for the trackers: (frame, boxes) -> one vector per box. The tracker only
// sees this interface, so a new model plugs in by filling the struct:
// - "histogram": a colour-histogram baseline (below), no weights;
// - "masa": MASA's backbone -> adapter -> track head (csrc/model), 256-d, raw (unnormalised)
//   embeddings as the official trackers expect; provided by the model once it is complete.
#ifndef MASA_EVAL_EMBEDDER_H
#define MASA_EVAL_EMBEDDER_H

#include "core/config.h"
#include "data/image.h"

typedef struct embedder {
  int dim;
  // frame: the whole original image; boxes (n, 4) x1, y1, x2, y2 in its pixels; out (n, dim).
  // Returns MASA_OK or MASA_ERR with a message.
  int (*embed)(struct embedder *e, const image_u8 *frame, int n, const float *boxes, float *out);
  void *ctx;
  void (*free)(struct embedder *e);  // releases ctx (may be NULL)
} embedder;

void embedder_free(embedder *e);

// Colour histogram per box: the box (clipped to the image) is split into grid x grid cells; each
// cell gets a joint RGB histogram with `bins` levels per channel (bins^3 bins, value * bins / 256),
// normalised to sum 1 and square-rooted (so that dot products are Bhattacharyya coefficients);
// the cells are concatenated (cell-major, row by row; bin index (r * bins + g) * bins + b), the
// whole vector is L2-normalised and multiplied by `scale`. Default 4 bins, 2 x 2 cells: 256-d.
// The scale sets the temperature of the trackers' bi-softmax over raw dot products (dots lie in
// [0, scale^2]); cosine similarities do not depend on it. An empty box gives a zero vector.
typedef struct {
  int bins, grid;
  double scale;
  double inner;  // fraction of the box's width and height used, centred (1: the whole box)
} histogram_embedder_opts;

// Reads track.histogram.* (schema in eval/tracker_config.c).
int histogram_embedder_opts_from_config(const config *cfg, histogram_embedder_opts *o);
int embedder_histogram_create(const histogram_embedder_opts *o, embedder *out);

// The MASA model of the recipe (model.* keys) with weights from an HDF5 file (masa train's
// weights.h5, masa init, or converted official weights). eval/embedder_masa.c
// device_name: "cpu" (NULL), "cuda", "cuda:N" (core/device.h).
int embedder_masa_create(const config *cfg, const char *weights, const char *device_name,
                         embedder *out);

#endif
