// Training checkpoints: one HDF5 file per save in a checkpoint folder, written atomically, the
// newest K kept, a `latest` pointer, and loading that validates every name and shape.
//
// File layout (format version CKPT_FORMAT_VERSION), readable with a few lines of h5py:
//   /<official key>                      float32, every parameter of the table (frozen included:
//                                        BN running statistics live there)
//   /optimizer/momentum/<key>            SGD momentum buffers, trainable entries only
//   /optimizer/exp_avg/<key>, /optimizer/exp_avg_sq/<key>   AdamW moments, trainable entries only
//   /state/rng, /state/loader            int64 (n): key/value tables (names in attributes)
//   root attributes (int64): format_version, step, epoch, optim_steps, skipped_total,
//                            skipped_consecutive
//   root attributes (string): kind = "masa-train-checkpoint", optimizer = sgd | adamw,
//                             config (the effective recipe text), state_rng_names,
//                             state_loader_names (comma-separated)
// Gradients are not stored.
//
// Files are DIR/ckpt_<step, 10 digits>.h5. A save writes NAME.tmp, fsyncs it, renames it into
// place, fsyncs DIR, rewrites DIR/latest (a one-line text file naming the file) the same way, and
// only then deletes checkpoints older than the newest K and stale *.tmp files.
#ifndef MASA_CHECKPOINT_H
#define MASA_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/tensor.h"
#include "train/optim.h"

#define CKPT_FORMAT_VERSION 1
#define CKPT_KV_MAX 32
#define CKPT_KV_NAME 48

// A small named int64 table (RNG seeds and counters, data-loader cursor): the trainer fills it.
typedef struct {
  int n;
  char name[CKPT_KV_MAX][CKPT_KV_NAME];
  int64_t value[CKPT_KV_MAX];
} ckpt_kv;

void ckpt_kv_set(ckpt_kv *kv, const char *name, int64_t value);  // adds or replaces
// MASA_ERR naming `what` (the checkpoint) and the key when absent.
int ckpt_kv_get(const ckpt_kv *kv, const char *name, int64_t *value, const char *what);

typedef struct {
  int64_t step;   // iterations completed = the global index of the next iteration
  int64_t epoch;  // epoch of the next iteration
  ckpt_kv rng;
  ckpt_kv loader;  // e.g. epoch, batch, skipped (data/loader.h loader_cursor)
  char *config_text;  // save: the caller's text; load: malloc'd (checkpoint_state_free)
} checkpoint_state;

void checkpoint_state_free(checkpoint_state *s);  // frees a loaded config_text

typedef struct {
  const char *dir;  // created if missing (one level)
  int keep;         // newest K checkpoints kept (>= 1)
  // Crash tests only: write and fsync NAME.tmp, then return MASA_OK without renaming it.
  int stop_before_rename;
} checkpoint_opts;

// Saves params, optimizer moments and counters (from opt) and s. path_out (may be NULL) gets the
// file written.
int checkpoint_save(const checkpoint_opts *o, const param_table *t, const optim *opt,
                    const checkpoint_state *s, char *path_out, size_t path_n);

// Loads a checkpoint into t (params and moments), opt (steps, skip counters) and s. The table
// and the optimizer must be set up (optim_init) for the same model and optimizer type; every
// missing, unexpected or mis-shaped key is listed in one error. On error t's contents are
// unspecified (validation runs before any read, but a corrupt dataset can fail mid-way).
int checkpoint_load(const char *path, param_table *t, optim *opt, checkpoint_state *s);

// Only the parameters (a checkpoint or an exported weight file), for initialisation; extra keys
// in the file are ignored, missing ones are errors.
int checkpoint_load_weights(const char *path, param_table *t);

// The file DIR/latest names; without a `latest` file, the newest ckpt_*.h5. MASA_ERR when none.
int checkpoint_latest(const char *dir, char *path, size_t path_n);

// Resume: loads the latest checkpoint; when it cannot be read (truncated, corrupt) warns and tries
// the older ones, newest first. path_out gets the file that loaded.
int checkpoint_resume(const char *dir, param_table *t, optim *opt, checkpoint_state *s,
                      char *path_out, size_t path_n);

// Steps of the complete checkpoints in dir, newest first (malloc'd; *n may be 0).
int checkpoint_list(const char *dir, int64_t **steps, int *n);

// Inference weights: every parameter under its official key, no optimizer state. Atomic.
int checkpoint_export_weights(const char *path, const param_table *t);

#endif
