// Bump allocator for activations and scratch: one big block, pointers handed out in order,
// released all at once (arena_reset) after each step. Forward passes allocate their outputs and
// what backward needs from the step's arena; nothing is freed individually. Allocations are
// 64-byte aligned and zero-initialised on request only.
#ifndef MASA_ARENA_H
#define MASA_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "core/device.h"

typedef struct arena_block arena_block;

typedef struct {
  arena_block *head;   // blocks, newest first (grows when a request does not fit)
  size_t block_size;   // default size of a new block, bytes
  size_t used, peak;   // bytes in use now, high-water mark since creation
  device dev;          // where the blocks live (cpu unless arena_init_on says otherwise)
} arena;

void arena_init(arena *a, size_t block_size);  // host memory
// An arena whose blocks live on device d (pointers are device pointers there).
void arena_init_on(arena *a, size_t block_size, const device *d);
void arena_free(arena *a);
// Releases everything allocated so far (keeps the memory for reuse).
void arena_reset(arena *a);
void *arena_alloc_bytes(arena *a, size_t bytes);
float *arena_floats(arena *a, int64_t n);        // uninitialised
float *arena_zeros(arena *a, int64_t n);         // zeroed
// A saved position: arena_rewind(a, m) frees everything allocated after arena_mark.
typedef struct {
  arena_block *block;
  size_t off, used;
} arena_mark_t;
arena_mark_t arena_mark(const arena *a);
void arena_rewind(arena *a, arena_mark_t m);

#endif
