// Tracking inputs: a video as frames on disk, and per-frame detections from a file.
// Frames: a MOTChallenge sequence (SEQ/seqinfo.ini naming imDir, frameRate, seqLength) or a
// plain folder of .jpg/.jpeg/.png files taken in name order.
// Detections (format sniffed: .txt = MOTChallenge, .json = a list of COCO results or BDD100K
// frames):
// - MOTChallenge det.txt: frame (1-based), -1, left, top, width, height, score[, ...]; label 0.
// - COCO results: [{image_id, category_id, bbox [x, y, w, h], score}, ...]. image_id n is the
//   frame whose file-name stem is the number n (000017.jpg -> 17) when every stem is a number,
//   otherwise the n-th frame (1-based). Labels index the category ids in order of appearance.
// - BDD100K: [{name, videoName, frameIndex, labels: [{category, box2d {x1, y1, x2, y2}, score}]}]
//   (or {"frames": [...]}). A frame is found by its name's last path component among the frame
//   files, else by frameIndex (0-based position). Labels index the category names.
// Detections on frames outside the sequence are counted (`dropped`) and skipped.
#ifndef MASA_EVAL_DET_READER_H
#define MASA_EVAL_DET_READER_H

#include <stdint.h>

#include "data/image.h"

typedef struct {
  char dir[1536];   // folder holding the frame files
  char name[256];   // sequence name: seqinfo.ini's name, else the folder's
  int num_frames;
  char **files;     // (num_frames) file names in dir, in frame order
  double fps;       // seqinfo.ini frameRate; 0 when unknown
  int is_mot;       // path is a MOTChallenge sequence
  char seq_dir[1024];  // the sequence folder (MOT: holds det/det.txt, gt/gt.txt)
} frame_seq;

int frame_seq_open(const char *path, frame_seq *out);
void frame_seq_free(frame_seq *s);
// Decodes frame t (0-based).
int frame_seq_load(const frame_seq *s, int t, image_u8 *out);
// The path of frame t into buf.
void frame_seq_path(const frame_seq *s, int t, char *buf, int bufsize);

typedef enum { DETS_MOT = 0, DETS_COCO = 1, DETS_BDD = 2 } det_format;

typedef struct {
  float box[4];  // x1, y1, x2, y2
  float score;
  int label;
} det_box;

typedef struct {
  det_format format;
  int num_frames;
  int64_t *start;  // (num_frames + 1): frame t's detections are dets[start[t] .. start[t + 1])
  det_box *dets;
  int64_t n;
  int64_t dropped;
  int num_labels;
  int64_t *label_cat_id;     // COCO: category_id of each label
  char (*label_name)[64];    // BDD: category of each label
  int64_t *frame_image_id;   // COCO: image_id seen for each frame (-1: none)
  char video_name[256];      // BDD: videoName ("" when absent)
  int *frame_index;          // BDD: frameIndex of each frame (-1: frame absent from the file)
  char (*frame_name)[256];   // BDD: name of each frame ("" when absent)
} det_set;

// `format` -1 sniffs it from the file.
int det_read(const char *path, int format, const frame_seq *frames, det_set *out);
void det_set_free(det_set *d);

#endif
