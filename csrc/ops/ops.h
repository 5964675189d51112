// The CPU op library. Conventions shared by every op (each op file states its own on top):
// - Layout NCHW, contiguous, float32; sizes and indices are int64_t.
// - Forward functions OVERWRITE their outputs.
// - Backward functions ACCUMULATE (+=) into every gradient buffer they are given (input and
//   parameter gradients alike), so a tensor used by several branches just sums its gradients;
//   the caller zeroes. Any gradient pointer may be NULL: that gradient is not computed.
// - CUDA twins (kernels/) have the same name stem with _cuda and a trailing stream argument.
#ifndef MASA_OPS_H
#define MASA_OPS_H

#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/dcn.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/resample.h"
#include "ops/roi_align.h"

#endif
