/* wlayout.h - where each weight of cnn-small sits in the CUDA kernels' weight buffer.
 *
 * The kernels read weights in the order their loops walk them, so the buffer holds, per
 * layer l, a forward copy F_l [K*K][CIN][COUT] (output channels contiguous: one float4 is
 * four output channels of one input channel), a bias B_l, and a backward copy
 * R_l [K*K][COUT][CIN] (input channels contiguous, for the input gradient).  The dense
 * layer L4 reads its 256 inputs in NHWC order (the order the conv L3 writes them), so
 * its columns are permuted from PyTorch's flatten order (c*4 + h*2 + w).  L5 keeps the
 * PyTorch layout [NOUT][64].  Every offset is a multiple of 4 floats (16 bytes).
 *
 * The host builds the index map once (wlayout_map); a kernel turns the flat PyTorch
 * parameters into this buffer after every Adam step. */
#ifndef EBM_CUDA_WLAYOUT_H
#define EBM_CUDA_WLAYOUT_H

#include <stddef.h>
#include <stdint.h>

enum {
    WL_F0 = 0,                  /* [25][1][16] */
    WL_B0 = WL_F0 + 400,
    WL_R0 = WL_B0 + 16,         /* [25][16][1] */
    WL_F1 = WL_R0 + 400,        /* [9][16][32] */
    WL_B1 = WL_F1 + 4608,
    WL_R1 = WL_B1 + 32,         /* [9][32][16] */
    WL_F2 = WL_R1 + 4608,       /* [9][32][64] */
    WL_B2 = WL_F2 + 18432,
    WL_R2 = WL_B2 + 64,         /* [9][64][32] */
    WL_F3 = WL_R2 + 18432,      /* [9][64][64] */
    WL_B3 = WL_F3 + 36864,
    WL_R3 = WL_B3 + 64,         /* [9][64][64] */
    WL_F4 = WL_R3 + 36864,      /* [256 NHWC][64] */
    WL_B4 = WL_F4 + 16384,
    WL_R4 = WL_B4 + 64,         /* [64][256 NHWC] */
    WL_F5 = WL_R4 + 16384,      /* [NOUT][64], NOUT <= 16 */
    WL_B5 = WL_F5 + 16 * 64,
    /* L4 by warps with the tensor-core shapes (tc.cuh FwdL4W, BwdL4W), fp32, in the order a
     * warp's lanes read them (16 bytes per lane, lanes contiguous): forward
     * [16 output groups cg][8 c][32 lanes l][4 n] = W4[4 cg + n][j = l + 32 c]; backward
     * [16 input groups jg][2 k][4 q][32 lanes l][4 e] = W4[l + 32 k][j = 16 jg + 4 q + e] */
    WL_F4W = WL_B5 + 16,
    WL_R4W = WL_F4W + 16384,
    /* tensor-core fragments of L1-L3 (tc.cuh), rounded to TF32 (k >= WL_TC): forward
     * [K*K*CIN/8 k-steps][COUT/8 tiles][32 lanes][2], and backward class after class
     * (parity classes rh*2 + rw, taps th-major), [taps*COUT/8][CIN/8][32][2]: lane 4g + t
     * holds B[k 2t][n g] and B[k 2t+1][n g] of its k-step and tile (the channel pair that its
     * paired A load reads; wlayout.c frag) */
    WL_TC = WL_R4W + 16384,
    WL_TF1 = WL_TC,
    WL_TF2 = WL_TF1 + 4608,
    WL_TF3 = WL_TF2 + 18432,
    WL_TB1 = WL_TF3 + 36864,
    WL_TB2 = WL_TB1 + 4608,
    WL_TB3 = WL_TB2 + 18432,
    /* L0's (tc.cuh FwdTc0, BwdTc0): forward [4 k-steps: 25 taps and 7 zero rows][2][32][2]
     * (rows t, t+4: the mma's order); dE/dx [9 window points x 16 channels / 8][1][32][2],
     * columns the parity classes, paired as above */
    WL_TF0 = WL_TB3 + 36864,
    WL_TB0 = WL_TF0 + 512,
    WL_TOTAL = WL_TB0 + 1152
};

#ifdef __cplusplus
extern "C" {
#endif

/* The six parameter tensors of cnn-small(-cond) in the flat PyTorch-layout buffer. */
typedef struct {
    size_t w_off[6], b_off[6];
    int nout; /* 1 or 10 */
} wlayout_src;

/* map[k] (WL_TOTAL entries) = index into the flat parameters of kernel weight k, or -1
 * for padding (which the kernels never read but is kept zero). */
void wlayout_map(const wlayout_src *src, int32_t *map);

#ifdef __cplusplus
}
#endif
#endif
