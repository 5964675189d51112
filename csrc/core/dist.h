// Data-parallel process group. One process per device; launched by `mpirun -np N` (or Slurm's
// srun with PMIx): with MPI compiled in and a launcher present, dist_init joins the world,
// otherwise the process is rank 0 of 1. All MPI calls go through mpiCheck (file:line, the call,
// MPI's error string, non-zero exit).
#ifndef MASA_DIST_H
#define MASA_DIST_H

#include <stdint.h>

#include "core/device.h"

typedef struct {
  int rank, world;
  int local_rank;  // rank among the processes of this node (device index)
  int mpi;         // 1 when MPI was initialised by dist_init
} dist_ctx;

void dist_init(dist_ctx *d, int *argc, char ***argv);
void dist_finalize(dist_ctx *d);
// In-place sums over all ranks (no-ops for world 1).
void dist_allreduce_sum_f64(double *buf, int64_t count, void *dist);
void dist_allreduce_sum_f32(float *buf, int64_t count, void *dist);
void dist_barrier(dist_ctx *d);
// Copies buf from rank `root` to every rank.
void dist_broadcast(void *buf, int64_t bytes, int root, dist_ctx *d);
// In-place sum of a DEVICE buffer over ranks with NCCL (communicator created on first use, its
// id broadcast through MPI; the call returns when the sum is complete). MASA_ERR, touching
// nothing, when NCCL does not apply (not a CUDA device, no MPI, one rank, CPU-only build):
// the caller then goes through host memory and MPI.
int dist_device_allreduce_sum_f32(const device *dev, float *buf, int64_t count, dist_ctx *d);
// The same, asynchronous: queues the sum on NCCL's own stream once the work queued so far on
// dev's compute stream is done, and returns at once (MASA_ERR as above when NCCL does not apply).
// dist_device_allreduce_wait makes the compute stream wait for every sum started.
int dist_device_allreduce_start(const device *dev, float *buf, int64_t count, dist_ctx *d);
void dist_device_allreduce_wait(const device *dev);
// Releases the NCCL communicator (before dist_finalize).
void dist_device_finalize(void);

#endif
