/* kernels.h - launchers of the CUDA backend's kernels (defined in the .cu files beside
 * this one), for backend_cuda.cu, the parity tests and the benchmark.  Every launcher
 * checks its launch and returns an ebm_status; none synchronises unless it says so. */
#ifndef EBM_CUDA_KERNELS_H
#define EBM_CUDA_KERNELS_H

#include "cuda_common.h"
#include "fused_net.cuh"

/* Block shapes of the fused chain kernel: images per block, threads per block, the blocks
 * per SM the registers are capped for (__launch_bounds__), and the tiling policy bits
 * (POL_REUSE, POL_PAR in fused.cuh). */
typedef struct {
    int img, nt, minb, pol;
} cu_shape;

/* A shape's policy bits as letters for tables (buf holds 7 chars): P POL_PAR, R POL_REUSE,
 * G POL_PAD (padded G buffers), B POL_BAL, T POL_TC (TF32 tensor cores), 0 POL_TC0 (L0 too). */
static inline const char *cu_pol_label(int pol, char *buf) {
    int k = 0;
    if (pol & POL_PAR) buf[k++] = 'P';
    if (pol & POL_REUSE) buf[k++] = 'R';
    if (pol & POL_PAD) buf[k++] = 'G';
    if (pol & POL_BAL) buf[k++] = 'B';
    if (pol & POL_TC) buf[k++] = 'T';
    if (pol & POL_TC0) buf[k++] = '0';
    buf[k] = 0;
    return buf;
}

/* The shapes compiled in (ULA), and the one used for n chains when shape < 0: CU_PICK, the
 * fp32 kernel (the CPU's math to rounding), or CU_PICK_TF32, L0-L3 on the TF32 tensor cores. */
enum { CU_PICK = -1, CU_PICK_TF32 = -2 };
int cu_chain_shapes(cu_shape *out, int max);
int cu_chain_pick(int n, int tf32);

/* Runs the chains of a (ULA or MALA per a->mala) on nout = 1 or 10 outputs.  shape indexes
 * cu_chain_shapes (ULA only; CU_PICK or CU_PICK_TF32 = cu_chain_pick's; MALA is fp32). */
ebm_status cu_chains(const LvArgs *a, int nout, int shape, cudaStream_t st);

/* The training pass (forward, loss-weighted backward, dumps) over npos + nneg images. */
ebm_status cu_train_pass(const TrArgs *a, int nout, cudaStream_t st);
/* Floats per image of dump l (input: A_l, else G_l), as the training pass writes them. */
int cu_dump_is(int l, int input);

/* ---- training kernels (train_kernels.cu) ---------------------------------------------- */
/* cudaSuccess when this build has machine code for the current GPU. */
cudaError_t cu_probe(void);
/* wts[k] = params[map[k]] (0 where map[k] < 0), k < WL_TOTAL. */
ebm_status cu_prep_weights(float *wts, const float *params, const int32_t *map, cudaStream_t st);
/* Parameter gradients of the six layers from the dumps of n images into grads (PyTorch
 * layout, written, not accumulated); part: scratch of cu_wgrad_scratch(n) floats. */
size_t cu_wgrad_scratch(int n);
ebm_status cu_wgrad(float *grads, float *part, float *const *dA, float *const *dG, int n, int nout,
                    const size_t *w_off, const size_t *b_off, cudaStream_t st);
/* sums[0..3] = sum E+, sum E+^2, sum E-, sum E-^2 (double); sums[4] = |grads|^2. */
ebm_status cu_sums(double *sums, const float *E, int npos, int nneg, const float *grads, size_t np,
                   cudaStream_t st);
/* One Adam step (adam.h's arithmetic). */
ebm_status cu_adam(float *p, const float *g, float *m, float *v, size_t n, float lr_step, float b1, float b2,
                   float eps, float sqrt_bc2, cudaStream_t st);
/* Replay-buffer slot q < S gets lo + (hi - lo) * uniform(seed, START, q0 + q, 1) (q0: the
 * first slot of this GPU's shard in the whole buffer). */
ebm_status cu_buffer_init(float *buf, int S, int q0, uint64_t seed, float lo, float hi, cudaStream_t st);
/* Where one GPU's share of a data-parallel batch sits in the whole batch: its first positive
 * and first negative, the whole batch's negative count (the chains' RNG counters), and how
 * many of the whole batch's chains train the marginal (label -1; trainer.h). */
typedef struct {
    int pos0, neg0, n_all, n_marg;
} CuShard;
/* The classes conditional chains are drawn from (train_chain_classes, backend.h). */
typedef struct {
    int n, c[TRAIN_MAX_CLASSES];
} CuClasses;
/* Positives (noisy, clamped) into x[0..B) and chain starts into x[B..B+N) (trainer.h 1-2);
 * slots[j] and labels yneg[j] (from classes) for the negatives.  shard ({0, 0, N, n_marg}
 * for a whole batch): the random numbers are those of positives pos0.. and chains neg0.. of
 * the whole batch, and buffer slots are picked in this GPU's S-slot shard of the replay
 * buffer. */
ebm_status cu_batch(float *x, int *slots, int *yneg, const float *xpos_raw, int B, int N, const float *buf, int S,
                    const CuClasses *classes, uint64_t seed, uint64_t iter, float data_noise, float reinit, float lo,
                    float hi, const CuShard *shard, cudaStream_t st);
/* Order-independent 64-bit checksum of n floats' bit patterns into *out (device), for
 * checking that data-parallel replicas hold the same parameters. */
ebm_status cu_checksum(unsigned long long *out, const float *p, size_t n, cudaStream_t st);
/* buffer[slots[j]] = xneg[j], the larger j winning on a shared slot; win: S ints scratch. */
ebm_status cu_writeback(float *buf, int *win, const int *slots, const float *xneg, int N, cudaStream_t st);
/* n normals and uniforms of (seed, stream, a, b) (parity tests of the device Philox). */
ebm_status cu_rng_fill(float *normal, float *uniform, double *uat, uint64_t seed, uint32_t stream, uint32_t a,
                       uint32_t b, int n, cudaStream_t st);

/* ---- measured ceilings (bench) ----------------------------------------------------------- */
/* fp32 FMA rate (FLOP/s, 2 per FMA) of a register-only kernel; device copy bandwidth (B/s,
 * read + write). */
ebm_status cu_peak_fma(double *flops);
ebm_status cu_peak_copy(double *bytes_per_s);

#endif
