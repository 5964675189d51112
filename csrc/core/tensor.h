// Tensors: a shape (up to 6 dims, 64-bit sizes) over contiguous row-major storage (NCHW for maps).
// Parameter tables: every trainable or frozen parameter of a model, named by its official MASA
// state_dict key, with params / grads / optimizer moments each living in ONE contiguous buffer
// per role (llm.c's layout) so all-reduce, zeroing, clipping and checkpointing are one call each.
#ifndef MASA_TENSOR_H
#define MASA_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/device.h"

#define TENSOR_MAX_DIMS 6

typedef struct {
  float *data;
  int ndim;
  int64_t shape[TENSOR_MAX_DIMS];
  int owns;  // 1 when data was allocated by tensor_alloc and is freed by tensor_free
} tensor;

int64_t shape_numel(int ndim, const int64_t *shape);
int64_t tensor_numel(const tensor *t);
// Allocates zeroed storage.
tensor tensor_alloc(int ndim, const int64_t *shape);
tensor tensor_alloc4(int64_t n, int64_t c, int64_t h, int64_t w);
// A view onto existing storage (not freed by tensor_free).
tensor tensor_view(float *data, int ndim, const int64_t *shape);
void tensor_free(tensor *t);
int tensor_same_shape(const tensor *a, const tensor *b);
// "(2, 256, 64, 64)" into buf; returns buf.
char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

typedef struct {
  char name[160];  // official state_dict key
  int ndim;
  int64_t shape[TENSOR_MAX_DIMS];
  size_t offset;   // element offset into each role buffer
  int64_t numel;
  int trainable;   // 0: frozen (no gradient, no optimizer state)
} param_entry;

typedef struct {
  param_entry *entries;
  int count, cap;
  size_t total;            // elements over all entries
  size_t trainable_total;  // elements in trainable entries (they come first in grads/moments)
  float *params;           // (total)
  float *grads;            // (total); zero for frozen entries
  float *moment1, *moment2;  // optimizer state, allocated on demand
  device dev;              // where the role buffers live (cpu by default)
} param_table;

void param_table_init(param_table *t);
// Registers a parameter; buffers must not be allocated yet. Returns its index.
int param_table_add(param_table *t, const char *name, int ndim, const int64_t *shape, int trainable);
// Allocates params and grads (zeroed) and fixes the offsets.
void param_table_alloc(param_table *t);
void param_table_alloc_moments(param_table *t, int n_moments);
int param_table_find(const param_table *t, const char *name);  // -1 when absent
float *param_ptr(const param_table *t, int idx);
float *param_grad_ptr(const param_table *t, int idx);
void param_table_zero_grads(param_table *t);
// Moves every role buffer to device d (contents kept). Build, initialise and load on the host,
// then move; code that reads parameters on the host (checkpoints, export) works on a host copy.
void param_table_to_device(param_table *t, const device *d);
// dst: a table with src's entries, params and grads allocated (zeroed) on d.
void param_table_clone_layout(param_table *dst, const param_table *src, const device *d);
// Copies every role (params, grads, moments present in src) between same-layout tables, across
// devices; allocates missing moments in dst.
void param_table_copy_roles(param_table *dst, const param_table *src);
void param_table_free(param_table *t);

#endif
