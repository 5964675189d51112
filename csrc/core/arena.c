#include "core/arena.h"

#include <string.h>

#include "core/check.h"

struct arena_block {
  arena_block *next;  // older block
  size_t size, off;
  unsigned char *mem;
};

static arena_block *block_new(const arena *a, size_t size) {
  arena_block *b = mallocCheck(sizeof *b);
  b->next = NULL;
  b->size = size;
  b->off = 0;
  b->mem = dev_alloc_uninit(&a->dev, (size + 63) & ~(size_t)63);
  return b;
}

static void block_free(const arena *a, arena_block *b) {
  dev_free(&a->dev, b->mem);
  free(b);
}

void arena_init(arena *a, size_t block_size) { arena_init_on(a, block_size, &dev_cpu); }

void arena_init_on(arena *a, size_t block_size, const device *d) {
  memset(a, 0, sizeof *a);
  a->block_size = block_size ? block_size : ((size_t)64 << 20);
  a->dev = *d;
}

void arena_free(arena *a) {
  for (arena_block *b = a->head, *n; b; b = n) {
    n = b->next;
    block_free(a, b);
  }
  device d = a->dev;
  memset(a, 0, sizeof *a);
  a->dev = d;
}

void arena_reset(arena *a) {
  // Keep only the largest block, sized to the peak so the next step needs a single block.
  size_t want = a->peak > a->block_size ? a->peak : a->block_size;
  if (a->head && (a->head->next || a->head->size < want)) {
    arena_block *keep = NULL;
    for (arena_block *b = a->head, *n; b; b = n) {
      n = b->next;
      block_free(a, b);
    }
    keep = block_new(a, want);
    a->head = keep;
  }
  if (a->head) a->head->off = 0;
  a->used = 0;
}

void *arena_alloc_bytes(arena *a, size_t bytes) {
  size_t need = (bytes + 63) & ~(size_t)63;
  if (!a->head || a->head->off + need > a->head->size) {
    arena_block *b = block_new(a, need > a->block_size ? need : a->block_size);
    b->next = a->head;
    a->head = b;
  }
  void *p = a->head->mem + a->head->off;
  a->head->off += need;
  a->used += need;
  if (a->used > a->peak) a->peak = a->used;
  return p;
}

float *arena_floats(arena *a, int64_t n) {
  masa_assert(n >= 0);
  return arena_alloc_bytes(a, (size_t)n * sizeof(float));
}

float *arena_zeros(arena *a, int64_t n) {
  float *p = arena_floats(a, n);
  dev_zero(&a->dev, p, (size_t)n * sizeof(float));
  return p;
}

arena_mark_t arena_mark(const arena *a) {
  arena_mark_t m = {a->head, a->head ? a->head->off : 0, a->used};
  return m;
}

void arena_rewind(arena *a, arena_mark_t m) {
  // Drop blocks newer than the mark's block (keeps things simple; rare path).
  while (a->head && a->head != m.block) {
    arena_block *b = a->head;
    a->head = b->next;
    block_free(a, b);
  }
  if (a->head) a->head->off = m.off;
  a->used = m.used;
}
