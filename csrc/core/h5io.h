// Named float32 tensors in HDF5: one dataset per key at the file's root, the key being the
// official state_dict name (dots included), so weights move to and from PyTorch with a few lines
// of h5py. Every reader validates name, dtype and shape and reports problems through
// masa_error (core/error.h) naming the file and the key.
#ifndef MASA_H5IO_H
#define MASA_H5IO_H

#include <stdint.h>

#include "core/tensor.h"

typedef struct h5file h5file;

// NULL on failure (missing file, not HDF5, truncated): see masa_errmsg().
h5file *h5_open_read(const char *path);
h5file *h5_create(const char *path);  // truncates
void h5_close(h5file *f);
const char *h5_path(const h5file *f);

int h5_has(h5file *f, const char *name);
// Number of datasets at the root and the i-th name (for listing extra keys).
int h5_count(h5file *f);
int h5_name_at(h5file *f, int i, char *buf, int bufsize);
// Shape of a float32 dataset. MASA_ERR when missing or not float32.
int h5_shape(h5file *f, const char *name, int *ndim, int64_t shape[TENSOR_MAX_DIMS]);
// Reads a float32 dataset whose shape must equal (ndim, shape).
int h5_read(h5file *f, const char *name, float *dst, int ndim, const int64_t *shape);
// Reads a float32 dataset of any shape into a new tensor.
int h5_read_tensor(h5file *f, const char *name, tensor *out);
// Reads an int64 dataset (indices, argmax tables) of any shape into a new buffer.
int h5_read_i64(h5file *f, const char *name, int64_t **out, int *ndim, int64_t shape[TENSOR_MAX_DIMS]);
int h5_write(h5file *f, const char *name, const float *src, int ndim, const int64_t *shape);
int h5_write_i64(h5file *f, const char *name, const int64_t *src, int ndim, const int64_t *shape);
// Scalar attributes on the root group (step, epoch, config text, ...).
int h5_write_attr_str(h5file *f, const char *name, const char *value);
int h5_read_attr_str(h5file *f, const char *name, char **value);  // malloc'd
int h5_write_attr_i64(h5file *f, const char *name, int64_t value);
int h5_read_attr_i64(h5file *f, const char *name, int64_t *value);

// Loads every parameter of the table from f. All missing keys, wrong shapes and (when strict)
// extra keys are listed in one error message. Frozen and trainable entries alike.
int h5_load_params(h5file *f, param_table *t, int strict);
// Writes every parameter to path atomically: path.tmp, fsync, rename. Existing path stays intact
// until the new file is complete.
int h5_save_params(const char *path, const param_table *t);

#endif
