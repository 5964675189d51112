// MOTChallenge text formats (motchallenge.net; TrackEval datasets/mot_challenge_2d_box.py).
//   gt/gt.txt:     frame (1-based), id, left, top, width, height, consider flag (0 = ignore),
//                  class, visibility
//   det/det.txt,   frame, id (-1 for detections), left, top, width, height, confidence, x, y, z
//   results:       (the last three -1)
//   seqinfo.ini:   [Sequence] name, imDir, frameRate, seqLength, imWidth, imHeight, imExt
// Fields are separated by commas or whitespace (TrackEval sniffs the delimiter; so do we, per
// line). Rows are kept as read, frames 1-based; the evaluation turns them into timesteps.
#ifndef MASA_EVAL_MOT_FORMAT_H
#define MASA_EVAL_MOT_FORMAT_H

#include <stdint.h>
#include <stdio.h>

#define MOT_MAX_COLS 10

typedef struct {
  double v[MOT_MAX_COLS];  // unread trailing columns are -1
  int ncols;               // columns present in the file (>= 6)
} mot_row;

typedef struct {
  mot_row *rows;
  int64_t n, cap;
} mot_rows;

typedef struct {
  char name[256], im_dir[256], im_ext[32];
  int frame_rate, seq_length, im_width, im_height;
} mot_seqinfo;

// Reads every row of a MOT text file. Empty files give zero rows. Errors name the file and line.
int mot_read(const char *path, mot_rows *out);
void mot_rows_free(mot_rows *r);
void mot_rows_push(mot_rows *r, const double *v, int ncols);
// Writes rows as "frame,id,left,top,width,height,conf,x,y,z" (results/det layout; gt rows with
// their own columns when ncols == 9).
int mot_write(const char *path, const mot_rows *r);

// seqinfo.ini: seqLength is required; the other keys default to empty / 0.
int mot_read_seqinfo(const char *path, mot_seqinfo *out);
int mot_write_seqinfo(const char *path, const mot_seqinfo *info);

#endif
