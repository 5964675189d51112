#include "core/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"
#include "core/log.h"
#ifdef MASA_HAVE_CUDA
#include "kernels/cuda_check.h"
#endif

#ifdef MASA_HAVE_MPI
#include <mpi.h>

#define mpiCheck(call)                                        \
  do {                                                        \
    int rc_ = (call);                                         \
    if (rc_ != MPI_SUCCESS) {                                 \
      char msg_[MPI_MAX_ERROR_STRING];                        \
      int len_ = 0;                                           \
      MPI_Error_string(rc_, msg_, &len_);                     \
      masa_die(__FILE__, __LINE__, #call, "MPI", msg_);       \
    }                                                         \
  } while (0)
#endif

// A launcher leaves its marks in the environment; without one we never touch MPI, so a plain
// `masa train` starts instantly and needs no MPI daemon.
static int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") ||
         getenv("MV2_COMM_WORLD_SIZE");
}

void dist_init(dist_ctx *d, int *argc, char ***argv) {
  memset(d, 0, sizeof *d);
  d->world = 1;
#ifdef MASA_HAVE_MPI
  if (launched_by_mpi()) {
    mpiCheck(MPI_Init(argc, argv));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    MPI_Comm node;
    mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node));
    mpiCheck(MPI_Comm_rank(node, &d->local_rank));
    mpiCheck(MPI_Comm_free(&node));
    d->mpi = 1;
  }
#else
  (void)argc;
  (void)argv;
  if (launched_by_mpi())
    log_warn("started by an MPI launcher, but this build has no MPI: running as a single process");
#endif
  log_set_rank(d->rank, d->world);
}

void dist_finalize(dist_ctx *d) {
  dist_device_finalize();
#ifdef MASA_HAVE_MPI
  if (d->mpi) mpiCheck(MPI_Finalize());
#endif
  d->mpi = 0;
}

#ifdef MASA_HAVE_MPI
static void allreduce(void *buf, int64_t count, MPI_Datatype t, size_t elem) {
  // MPI counts are int: reduce in chunks.
  char *p = buf;
  while (count > 0) {
    int n = count > INT_MAX / 2 ? INT_MAX / 2 : (int)count;
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, p, n, t, MPI_SUM, MPI_COMM_WORLD));
    p += (size_t)n * elem;
    count -= n;
  }
}
#endif

void dist_allreduce_sum_f64(double *buf, int64_t count, void *dist) {
  dist_ctx *d = dist;
  if (!d || d->world == 1) return;
#ifdef MASA_HAVE_MPI
  allreduce(buf, count, MPI_DOUBLE, sizeof(double));
#else
  (void)buf;
  (void)count;
#endif
}

void dist_allreduce_sum_f32(float *buf, int64_t count, void *dist) {
  dist_ctx *d = dist;
  if (!d || d->world == 1) return;
#ifdef MASA_HAVE_MPI
  allreduce(buf, count, MPI_FLOAT, sizeof(float));
#else
  (void)buf;
  (void)count;
#endif
}

void dist_barrier(dist_ctx *d) {
#ifdef MASA_HAVE_MPI
  if (d->mpi) mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
#else
  (void)d;
#endif
}

void dist_broadcast(void *buf, int64_t bytes, int root, dist_ctx *d) {
#ifdef MASA_HAVE_MPI
  if (!d->mpi || d->world == 1) return;
  masa_assert(bytes <= INT_MAX);
  mpiCheck(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD));
#else
  (void)buf;
  (void)bytes;
  (void)root;
  (void)d;
#endif
}

// ---- gradients on the GPU: NCCL, the unique id broadcast through MPI ----

#if defined(MASA_HAVE_CUDA) && defined(MASA_HAVE_MPI)
static ncclComm_t g_nccl;
static int g_nccl_state;  // 0: not tried, 1: ready, -1: unavailable (fall back to MPI)
static cudaStream_t g_nccl_stream;  // all-reduces started with dist_device_allreduce_start
static cudaEvent_t g_ev_compute, g_ev_nccl;

static int nccl_ready(const dist_ctx *d) {
  if (g_nccl_state) return g_nccl_state > 0;
  g_nccl_state = -1;
  if (!d->mpi || d->world < 2) return 0;
  ncclUniqueId id;
  if (d->rank == 0) ncclCheck(ncclGetUniqueId(&id));
  mpiCheck(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD));
  ncclCheck(ncclCommInitRank(&g_nccl, d->world, id, d->rank));
  cudaCheck(cudaStreamCreateWithFlags(&g_nccl_stream, cudaStreamNonBlocking));
  cudaCheck(cudaEventCreateWithFlags(&g_ev_compute, cudaEventDisableTiming));
  cudaCheck(cudaEventCreateWithFlags(&g_ev_nccl, cudaEventDisableTiming));
  g_nccl_state = 1;
  log_info("gradients all-reduced with NCCL across %d GPUs", d->world);
  return 1;
}
#endif


int dist_device_allreduce_start(const device *dev, float *buf, int64_t count, dist_ctx *d) {
#if defined(MASA_HAVE_CUDA) && defined(MASA_HAVE_MPI)
  if (dev->kind == DEV_CUDA && nccl_ready(d)) {
    // The sum starts once the compute stream has produced buf, and runs beside later work.
    cudaCheck(cudaEventRecord(g_ev_compute, (cudaStream_t)dev->stream));
    cudaCheck(cudaStreamWaitEvent(g_nccl_stream, g_ev_compute, 0));
    ncclCheck(ncclAllReduce(buf, buf, (size_t)count, ncclFloat, ncclSum, g_nccl, g_nccl_stream));
    return MASA_OK;
  }
#else
  (void)buf, (void)count, (void)d;
#endif
  (void)dev;
  return MASA_ERR;
}

void dist_device_allreduce_wait(const device *dev) {
#if defined(MASA_HAVE_CUDA) && defined(MASA_HAVE_MPI)
  if (dev->kind == DEV_CUDA && g_nccl_state > 0) {
    cudaCheck(cudaEventRecord(g_ev_nccl, g_nccl_stream));
    cudaCheck(cudaStreamWaitEvent((cudaStream_t)dev->stream, g_ev_nccl, 0));
  }
#else
  (void)dev;
#endif
}

int dist_device_allreduce_sum_f32(const device *dev, float *buf, int64_t count, dist_ctx *d) {
  if (dist_device_allreduce_start(dev, buf, count, d) != MASA_OK) return MASA_ERR;
  dist_device_allreduce_wait(dev);
  dev_sync(dev);
  return MASA_OK;
}

void dist_device_finalize(void) {
#if defined(MASA_HAVE_CUDA) && defined(MASA_HAVE_MPI)
  if (g_nccl_state > 0) {
    cudaCheck(cudaStreamSynchronize(g_nccl_stream));
    cudaCheck(cudaEventDestroy(g_ev_compute));
    cudaCheck(cudaEventDestroy(g_ev_nccl));
    cudaCheck(cudaStreamDestroy(g_nccl_stream));
    ncclCheck(ncclCommDestroy(g_nccl));
  }
  g_nccl_state = 0;
#endif
}
