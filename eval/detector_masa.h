// MASA's own class-agnostic detector, for tracking without an external one: the distilled
// object-prior branch (RPN proposals with the test cfg -> RoI box head -> score > 0.02,
// class-agnostic NMS 0.5, at most 50 boxes per frame; masa-spec 3 test_cfg), boxes mapped back
// to frame pixels. Needs weights with a trained RPN and box head (`masa train` with
// train.distill = true, or converted official weights).
#ifndef MASA_DETECTOR_MASA_H
#define MASA_DETECTOR_MASA_H

#include "core/config.h"
#include "eval/det_reader.h"

// Detects every frame of fs into out (format DETS_MOT, one label). MASA_ERR with a message when
// the recipe has no RPN or box head, or a frame cannot be read.
// device_name: "cpu" (NULL), "cuda", "cuda:N" (core/device.h).
int masa_detect_sequence(const config *cfg, const char *weights, const char *device_name,
                         const frame_seq *fs, det_set *out);

#endif
