/* replica.h - one GPU's copy of the CUDA backend (backend_cuda.cu), opened up in stages so
 * that a data-parallel backend (backend_multi.cu) can put an NCCL all-reduce between them.
 * backend_cuda_create runs the stages back to back on one GPU; the multi-GPU backend runs
 * each stage on every GPU, in one host thread, with the reductions between.
 *
 * One iteration on one replica:
 *   replica_grads   chain starts, Langevin, write-back, training pass, parameter gradient
 *                   of this GPU's share, normalised by the whole batch (B_all, sh->n_all),
 *                   so that the sum over GPUs is the whole batch's gradient
 *   (all-reduce of replica_grads_buf: np floats)
 *   replica_sums    sums[0..3] = this share's (B, N) sum E+, E+^2, E-, E-^2; sums[4] = |grad|^2
 *   (all-reduce of sums[0..3]: 4 doubles)
 *   replica_fetch   sums and the divergence flag to pinned host memory (asynchronous)
 *   replica_sync, replica_read   the stats; DIVERGED on a bad chain or a non-finite loss
 *   replica_update  Adam and the kernels' weight layout (identical inputs on every GPU give
 *                   identical parameters: replica_checksum checks it)
 * Every call selects its replica's GPU itself; all work is queued on the replica's stream. */
#ifndef EBM_CUDA_REPLICA_H
#define EBM_CUDA_REPLICA_H

#include "cuda_common.h"
#include "kernels.h"

typedef struct cuda_ctx cuda_ctx;

/* GPUs on this machine; UNSUPPORTED, saying why, when there are none. */
ebm_status replica_device_count(int *count);

/* hp: this replica's shapes (its share of batch, n_samples and buffer_size). */
ebm_status replica_create(net *host, const train_hparams *hp, int device, cuda_ctx **out);
void replica_free(cuda_ctx *c);

/* B positives (host) and N chains of this share; sh = NULL for a whole batch on one GPU.
 * hp: the run's hyper-parameters (only its sampler, alpha, noise and reinit are used). */
ebm_status replica_grads(cuda_ctx *c, const float *x_pos, const int *y_pos, int B, int N, const CuShard *sh,
                         int B_all, const train_hparams *hp, uint64_t iter);
ebm_status replica_sums(cuda_ctx *c, int B, int N);
ebm_status replica_fetch(cuda_ctx *c);
ebm_status replica_sync(cuda_ctx *c);
ebm_status replica_read(cuda_ctx *c, int B_all, int N_all, const train_hparams *hp, train_step_stats *st);
ebm_status replica_update(cuda_ctx *c, const train_hparams *hp, uint64_t iter);
/* The checksum (kernels.h cu_checksum) of the parameters; synchronises the replica. */
ebm_status replica_checksum(cuda_ctx *c, unsigned long long *out);

/* backend.h's pull / push / sample on this replica; pull and push move this replica's
 * shard of the replay buffer (its buffer_size slots). */
ebm_status replica_pull(cuda_ctx *c, net *host, float *buffer);
ebm_status replica_push(cuda_ctx *c, const net *host, const float *buffer);
ebm_status replica_sample(cuda_ctx *c, float *x, const int *y, int n, int steps, const langevin_params *p,
                          langevin_stats *stats, langevin_snapshot_fn snap, void *ud, int every);

/* Re-draws this replica's buffer shard as slots q0 .. q0 + buffer_size - 1 of the whole
 * buffer (trainer.h 5), so that shards start apart. */
ebm_status replica_buffer_init(cuda_ctx *c, int q0, const train_hparams *hp);

int replica_device(const cuda_ctx *c);
cudaStream_t replica_stream(const cuda_ctx *c);
float *replica_grads_buf(cuda_ctx *c);
double *replica_sums_buf(cuda_ctx *c);
size_t replica_nparams(const cuda_ctx *c);

/* The data-parallel backend on any number of GPUs, NCCL even for one (backend.h's
 * backend_cuda_multi_create takes the plain one-GPU backend for gpus = 1): for the tests
 * and the scaling benchmark. */
ebm_status backend_cuda_dp_create(net *host, const train_hparams *hp, int device, int gpus, train_backend *out);

#endif
