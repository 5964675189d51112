// Synthetic data, a pure function of a seed (core/rng.h streams; independent of thread count):
// - SA-1B format: textured objects of varied shapes (ellipses, star polygons, harmonic blobs),
//   colours, sizes and overlaps on textured backgrounds; later objects occlude earlier ones and
//   each annotation is the VISIBLE part of its object (like SAM masks), as a compressed RLE in an
//   SA-1B per-image JSON (bbox in SA-1B's inclusive convention), next to a JPEG; optionally
//   packed into ustar shards sa_000000.tar, ... as SA-1B is distributed.
// - MOTChallenge sequences: the same kind of objects moving (smooth, bouncing, slowly rotating
//   and scaling, changing depth order) over a static textured background; an object's texture is
//   attached to its own frame, so its appearance stays consistent over time. gt/gt.txt has full
//   (unclipped) boxes with the visible fraction; det/det.txt noisy detections (jittered boxes,
//   misses that grow with occlusion, false positives, scores).
#ifndef MASA_SYNTH_H
#define MASA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t seed;
  int64_t n_images;
  int h, w;                      // image rows and columns
  int objects_min, objects_max;  // objects drawn per image (fully hidden ones get no annotation)
  int min_area;                  // visible pixels below which an object gets no annotation
  int jpeg_quality;
  int per_shard;                 // 0: sa_N.jpg + sa_N.json files; > 0: .tar shards of that many
} synth_opts;

typedef struct {
  uint64_t seed;
  int n_seqs, n_frames;
  int h, w;
  int objects_min, objects_max;
  int fps;
  int jpeg_quality;
} synth_video_opts;

void synth_default_opts(synth_opts *o);              // 16 images, 256 x 320, 8-24 objects
void synth_video_default_opts(synth_video_opts *o);  // 2 sequences of 60 frames, 256 x 320
// Image `index` (0-based; named sa_<index+1>) in memory: its JPEG and its SA-1B JSON (malloc'd).
int synth_sa1b_sample(const synth_opts *o, int64_t index, uint8_t **jpeg, size_t *jpeg_n,
                      char **json, size_t *json_n);
// Writes the dataset into out_dir (created if needed).
int synth_sa1b(const synth_opts *o, const char *out_dir);
// Writes sequences out_dir/SYN-01, ... in MOTChallenge layout.
int synth_video(const synth_video_opts *o, const char *out_dir);
// mkdir -p
int make_dirs(const char *path);

#endif
