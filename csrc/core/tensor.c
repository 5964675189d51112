#include "core/tensor.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"

int64_t shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

int64_t tensor_numel(const tensor *t) { return shape_numel(t->ndim, t->shape); }

tensor tensor_alloc(int ndim, const int64_t *shape) {
  masa_assert(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
  tensor t = {0};
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    masa_assert(shape[i] >= 0);
    t.shape[i] = shape[i];
  }
  t.data = callocCheck((size_t)shape_numel(ndim, shape), sizeof(float));
  t.owns = 1;
  return t;
}

tensor tensor_alloc4(int64_t n, int64_t c, int64_t h, int64_t w) {
  int64_t s[4] = {n, c, h, w};
  return tensor_alloc(4, s);
}

tensor tensor_view(float *data, int ndim, const int64_t *shape) {
  masa_assert(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
  tensor t = {0};
  t.data = data;
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
  return t;
}

void tensor_free(tensor *t) {
  if (t->owns) free(t->data);
  memset(t, 0, sizeof *t);
}

int tensor_same_shape(const tensor *a, const tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

char *shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, n, "(");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, ")");
  return buf;
}

void param_table_init(param_table *t) { memset(t, 0, sizeof *t); }

int param_table_add(param_table *t, const char *name, int ndim, const int64_t *shape, int trainable) {
  masa_assert(t->params == NULL);
  masa_assert(ndim >= 0 && ndim <= TENSOR_MAX_DIMS);
  masa_assert(strlen(name) < sizeof t->entries[0].name);
  masa_assert(param_table_find(t, name) < 0);
  if (t->count == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    param_entry *e = realloc(t->entries, (size_t)t->cap * sizeof *e);
    if (!e) masa_die(__FILE__, __LINE__, "realloc", "libc", "out of memory");
    t->entries = e;
  }
  param_entry *e = &t->entries[t->count];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  e->ndim = ndim;
  for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
  e->numel = shape_numel(ndim, shape);
  e->trainable = trainable;
  return t->count++;
}

void param_table_alloc(param_table *t) {
  // Trainable entries first, so grads/moments of trainable parameters are one contiguous prefix.
  size_t off = 0;
  for (int pass = 1; pass >= 0; pass--)
    for (int i = 0; i < t->count; i++)
      if (t->entries[i].trainable == pass) {
        t->entries[i].offset = off;
        off += (size_t)t->entries[i].numel;
        if (pass) t->trainable_total = off;
      }
  t->total = off;
  t->params = dev_alloc(&t->dev, t->total * sizeof(float));
  t->grads = dev_alloc(&t->dev, t->total * sizeof(float));
}

void param_table_alloc_moments(param_table *t, int n_moments) {
  masa_assert(t->params != NULL);
  if (n_moments >= 1 && !t->moment1) t->moment1 = dev_alloc(&t->dev, t->trainable_total * sizeof(float));
  if (n_moments >= 2 && !t->moment2) t->moment2 = dev_alloc(&t->dev, t->trainable_total * sizeof(float));
}

static float *move_role(const device *from, const device *to, float *p, size_t n) {
  if (!p) return NULL;
  float *q = dev_alloc(to, n * sizeof(float));
  if (from->kind == DEV_CPU) {
    dev_upload(to, q, p, n * sizeof(float));
  } else {
    masa_assert(to->kind == DEV_CPU);
    dev_download(from, q, p, n * sizeof(float));
  }
  dev_free(from, p);
  return q;
}

void param_table_to_device(param_table *t, const device *d) {
  if (t->dev.kind == d->kind && t->dev.ordinal == d->ordinal) return;
  device from = t->dev;
  if (from.kind != DEV_CPU && d->kind != DEV_CPU) {  // device to device goes through the host
    param_table_to_device(t, &dev_cpu);
    from = t->dev;
  }
  t->params = move_role(&from, d, t->params, t->total);
  t->grads = move_role(&from, d, t->grads, t->total);
  t->moment1 = move_role(&from, d, t->moment1, t->trainable_total);
  t->moment2 = move_role(&from, d, t->moment2, t->trainable_total);
  t->dev = *d;
}

static void copy_role(const param_table *dst, float *d, const param_table *src, const float *s,
                      size_t n) {
  if (!d || !s || !n) return;
  if (dst->dev.kind == DEV_CPU && src->dev.kind == DEV_CPU) memcpy(d, s, n * sizeof(float));
  else if (dst->dev.kind == DEV_CPU) dev_download(&src->dev, d, s, n * sizeof(float));
  else if (src->dev.kind == DEV_CPU) dev_upload(&dst->dev, d, s, n * sizeof(float));
  else {
    float *tmp = mallocCheck(n * sizeof(float));
    dev_download(&src->dev, tmp, s, n * sizeof(float));
    dev_upload(&dst->dev, d, tmp, n * sizeof(float));
    free(tmp);
  }
}

void param_table_copy_roles(param_table *dst, const param_table *src) {
  masa_assert(dst->count == src->count && dst->total == src->total &&
              dst->trainable_total == src->trainable_total);
  if ((src->moment1 && !dst->moment1) || (src->moment2 && !dst->moment2))
    param_table_alloc_moments(dst, src->moment2 ? 2 : 1);
  copy_role(dst, dst->params, src, src->params, src->total);
  copy_role(dst, dst->grads, src, src->grads, src->total);
  copy_role(dst, dst->moment1, src, src->moment1, src->trainable_total);
  copy_role(dst, dst->moment2, src, src->moment2, src->trainable_total);
}

void param_table_clone_layout(param_table *dst, const param_table *src, const device *d) {
  param_table_init(dst);
  dst->dev = *d;
  dst->count = dst->cap = src->count;
  dst->entries = mallocCheck((size_t)(src->count ? src->count : 1) * sizeof *dst->entries);
  memcpy(dst->entries, src->entries, (size_t)src->count * sizeof *dst->entries);
  dst->total = src->total;
  dst->trainable_total = src->trainable_total;
  dst->params = dev_alloc(d, dst->total * sizeof(float));
  dst->grads = dev_alloc(d, dst->total * sizeof(float));
}

int param_table_find(const param_table *t, const char *name) {
  for (int i = 0; i < t->count; i++)
    if (strcmp(t->entries[i].name, name) == 0) return i;
  return -1;
}

float *param_ptr(const param_table *t, int idx) { return t->params + t->entries[idx].offset; }
float *param_grad_ptr(const param_table *t, int idx) { return t->grads + t->entries[idx].offset; }

void param_table_zero_grads(param_table *t) { dev_zero(&t->dev, t->grads, t->total * sizeof(float)); }

void param_table_free(param_table *t) {
  free(t->entries);
  dev_free(&t->dev, t->params);
  dev_free(&t->dev, t->grads);
  dev_free(&t->dev, t->moment1);
  dev_free(&t->dev, t->moment2);
  memset(t, 0, sizeof *t);
}
