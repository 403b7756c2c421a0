/* chain_kernels.cu - the fused Langevin kernel (one launch runs every step of a chain, one
 * thread block per IMG chains; fused_net.cuh has the body) and the training pass, with
 * their launchers.  Shapes are chosen by measurement (docs/PERF_CUDA.md). */
#include "kernels.h"

template <int IMG, int NT, int NOUT, bool MALA, int MINB, int POL>
__global__ void __launch_bounds__(NT, MINB) k_chains(LvArgs a) {
    extern __shared__ float4 smem4[];
    FusedNet<IMG, NT, NOUT, MALA, POL>::chains(DevEx{a.stamps}, reinterpret_cast<float *>(smem4), (int)blockIdx.x,
                                          (int)threadIdx.x, a);
}

template <int IMG, int NT, int NOUT>
__global__ void __launch_bounds__(NT, 1) k_train(TrArgs a) {
    extern __shared__ float4 smem4[];
    FusedNet<IMG, NT, NOUT, false>::train(DevEx{}, reinterpret_cast<float *>(smem4), (int)blockIdx.x, a);
}

/* The training pass's shape: one image per block keeps 2B = 256 images on 256 blocks. */
#define TRAIN_IMG 1
#define TRAIN_NT 256

template <int IMG, int NT, int NOUT, bool MALA, int MINB = 1, int POL = 0>
static ebm_status launch_chains(const LvArgs *a, cudaStream_t st) {
    using FN = FusedNet<IMG, NT, NOUT, MALA, POL>;
    const size_t smem = FN::Y::BYTES;
    /* the attribute is per kernel and cheap; setting it every time keeps this stateless */
    CU_TRY(cudaFuncSetAttribute(k_chains<IMG, NT, NOUT, MALA, MINB, POL>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    /* shared memory for MINB blocks and no more: the rest of the SM's 256 KB stays L1,
     * which caches the weights (read from global memory every step) */
    const int carve = (int)((MINB * (smem + 1024) * 100 + 228 * 1024 - 1) / (228 * 1024));
    CU_TRY(cudaFuncSetAttribute(k_chains<IMG, NT, NOUT, MALA, MINB, POL>, cudaFuncAttributePreferredSharedMemoryCarveout,
                                carve > 100 ? 100 : carve));
    const int blocks = (a->n + IMG - 1) / IMG;
    k_chains<IMG, NT, NOUT, MALA, MINB, POL><<<blocks, NT, smem, st>>>(*a);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* 0-4: run 1's kernel (docs/PERF_CUDA.md).  5-7: POL_PAR; 8-10: POL_PAR | POL_REUSE, with
 * POL_PAD since run 6 (fused.cuh).  13: shape 10 with L0-L3 on the TF32 tensor cores
 * (POL_TC | POL_TC0, tc.cuh; run 7); 14: the same with one image per block of 256 threads.
 * 5-8 and 11-12 are compiled for cnn-small (NOUT 1) only; other heads use the automatic pick. */
static const cu_shape shapes[] = {{1, 256, 1, 0}, {1, 256, 2, 0}, {1, 512, 1, 0}, {2, 256, 1, 0},
                                  {2, 512, 1, 0}, {1, 256, 2, 2}, {1, 512, 1, 2}, {2, 512, 1, 2},
                                  {1, 256, 2, 7}, {1, 512, 1, 7}, {2, 512, 1, 7}, {1, 512, 1, 15}, {2, 512, 1, 15},
                                  {2, 512, 1, 55}, {1, 256, 1, 55}};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

int cu_chain_shapes(cu_shape *out, int max) {
    for (int i = 0; i < NSHAPES && i < max; i++) out[i] = shapes[i];
    return NSHAPES;
}

/* Measured on an H200 (docs/PERF_CUDA.md, run 6g, 60 steps): up to one chain per SM, one
 * image per block of 512 threads (shape 9, batch 128: 3.48 M image-steps/s); beyond, two
 * images per block (shape 10, batch 8192: 4.29 M; shape 8 is 2% faster there but is not
 * compiled for the ten-output head).  POL_BAL (11, 12) measured no faster.  TF32 (run 8):
 * shape 14 up to one chain per SM (batch 128: 5.27 M, shape 13 4.27 M), shape 13 beyond
 * (batch 8192: 8.74 M, shape 14 5.56 M). */
int cu_chain_pick(int n, int tf32) {
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
            sms = 132;
    }
    if (tf32) return n <= sms ? 14 : 13;
    return n <= sms ? 9 : 10;
}

template <int NOUT>
static ebm_status chains_nout(const LvArgs *a, int shape, cudaStream_t st) {
    if (a->mala) return launch_chains<1, 256, NOUT, true>(a, st);
    /* the ten-output head has version 1's shapes and the two version-2 shapes that
     * cu_chain_pick takes (5-8 are compiled for one output only, to keep the build short) */
    if (shape < 0 || (NOUT != 1 && ((shape >= 5 && shape <= 8) || shape == 11 || shape == 12)))
        shape = cu_chain_pick(a->n, shape == CU_PICK_TF32);
    if constexpr (NOUT == 1) {
        switch (shape) {
        case 5: return launch_chains<1, 256, NOUT, false, 2, POL_PAR>(a, st);
        case 6: return launch_chains<1, 512, NOUT, false, 1, POL_PAR>(a, st);
        case 7: return launch_chains<2, 512, NOUT, false, 1, POL_PAR>(a, st);
        case 8: return launch_chains<1, 256, NOUT, false, 2, POL_PAR | POL_REUSE | POL_PAD>(a, st);
        case 11: return launch_chains<1, 512, NOUT, false, 1, POL_PAR | POL_REUSE | POL_PAD | POL_BAL>(a, st);
        case 12: return launch_chains<2, 512, NOUT, false, 1, POL_PAR | POL_REUSE | POL_PAD | POL_BAL>(a, st);
        default: break;
        }
    }
    switch (shape) {
    case 13: return launch_chains<2, 512, NOUT, false, 1, POL_PAR | POL_REUSE | POL_PAD | POL_TC | POL_TC0>(a, st);
    case 14: return launch_chains<1, 256, NOUT, false, 1, POL_PAR | POL_REUSE | POL_PAD | POL_TC | POL_TC0>(a, st);
    case 9: return launch_chains<1, 512, NOUT, false, 1, POL_PAR | POL_REUSE | POL_PAD>(a, st);
    case 10: return launch_chains<2, 512, NOUT, false, 1, POL_PAR | POL_REUSE | POL_PAD>(a, st);
    case 0: return launch_chains<1, 256, NOUT, false, 1>(a, st);
    case 1: return launch_chains<1, 256, NOUT, false, 2>(a, st);
    case 2: return launch_chains<1, 512, NOUT, false, 1>(a, st);
    case 3: return launch_chains<2, 256, NOUT, false, 1>(a, st);
    default: return launch_chains<2, 512, NOUT, false, 1>(a, st);
    }
}

ebm_status cu_chains(const LvArgs *a, int nout, int shape, cudaStream_t st) {
    EBM_ASSERT(nout == 1 || nout == 10);
    EBM_ASSERT(shape < NSHAPES && shape >= CU_PICK_TF32);
    if (a->n <= 0) return EBM_STATUS_OK;
    return nout == 1 ? chains_nout<1>(a, shape, st) : chains_nout<10>(a, shape, st);
}

template <int NOUT>
static ebm_status train_nout(const TrArgs *a, cudaStream_t st) {
    using FN = FusedNet<TRAIN_IMG, TRAIN_NT, NOUT, false>;
    const size_t smem = FN::Y::BYTES;
    CU_TRY(cudaFuncSetAttribute(k_train<TRAIN_IMG, TRAIN_NT, NOUT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                (int)smem));
    const int n = a->npos + a->nneg, blocks = (n + TRAIN_IMG - 1) / TRAIN_IMG;
    k_train<TRAIN_IMG, TRAIN_NT, NOUT><<<blocks, TRAIN_NT, smem, st>>>(*a);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

ebm_status cu_train_pass(const TrArgs *a, int nout, cudaStream_t st) {
    EBM_ASSERT(nout == 1 || nout == 10);
    if (a->npos + a->nneg <= 0) return EBM_STATUS_OK;
    return nout == 1 ? train_nout<1>(a, st) : train_nout<10>(a, st);
}

int cu_dump_is(int l, int input) { return FusedNet<TRAIN_IMG, TRAIN_NT, 1, false>::dump_is(l, input != 0); }
