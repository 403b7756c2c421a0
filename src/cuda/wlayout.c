/* wlayout.c - the index map from PyTorch-layout parameters to the kernels' weight buffer
 * (see wlayout.h).  Plain C: the host builds it, the CPU emulation test checks it. */
#include "wlayout.h"

static void conv_map(int32_t *map, size_t fo, size_t bo, size_t ro, size_t w_off, size_t b_off, int cin, int cout,
                     int k) {
    for (int co = 0; co < cout; co++) {
        for (int ci = 0; ci < cin; ci++) {
            for (int kh = 0; kh < k; kh++) {
                for (int kw = 0; kw < k; kw++) {
                    const int tap = kh * k + kw;
                    const int32_t src = (int32_t)(w_off + (((size_t)co * cin + ci) * k + kh) * k + kw);
                    map[fo + ((size_t)tap * cin + ci) * cout + co] = src;
                    map[ro + ((size_t)tap * cout + co) * cin + ci] = src;
                }
            }
        }
        map[bo + co] = (int32_t)(b_off + co);
    }
}

/* Fragment slot of B[k][n] (k < 8 * k-steps, n < 8 * n8): see wlayout.h.  Row kr = k % 8 of
 * a k-step is b0 of lane t = kr % 4 (b1 for kr >= 4): the mma's own order.  Paired (tc.cuh's
 * TcRows, where the 8 rows are 8 channels): channels 2t, 2t + 1 are lane t's b0, b1, so that
 * the A elements they multiply are adjacent and load as one 8 bytes. */
static size_t frag(int k, int n, int n8, int paired) {
    const int kk = k / 8, kr = k % 8, nt = n / 8, g = n % 8;
    const int t = paired ? kr / 2 : kr % 4, r = paired ? kr % 2 : kr / 4;
    return (((size_t)kk * n8 + nt) * 32 + g * 4 + t) * 2 + r;
}

/* tc.cuh's fragments of a conv k3 s2 p1: forward B[(tap, ci)][co], backward per parity class
 * B[(tap of the class, co)][ci]. */
static void tc_map(int32_t *map, size_t fo, size_t bo, size_t w_off, int cin, int cout) {
    const int k = 3, s = 2, p = 1;
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++)
            for (int tap = 0; tap < k * k; tap++)
                map[fo + frag(tap * cin + ci, co, cout / 8, 1)] = (int32_t)(w_off + ((size_t)co * cin + ci) * k * k + tap);
    size_t cls_off = bo;
    for (int rh = 0; rh < s; rh++)
        for (int rw = 0; rw < s; rw++) {
            const int k0h = (rh + p) % s, k0w = (rw + p) % s, nth = (k - k0h + s - 1) / s, ntw = (k - k0w + s - 1) / s;
            for (int th = 0; th < nth; th++)
                for (int tw = 0; tw < ntw; tw++) {
                    const int kh = k0h + th * s, kw = k0w + tw * s, tp = th * ntw + tw;
                    for (int co = 0; co < cout; co++)
                        for (int ci = 0; ci < cin; ci++)
                            map[cls_off + frag(tp * cout + co, ci, cin / 8, 1)] =
                                (int32_t)(w_off + (((size_t)co * cin + ci) * k + kh) * k + kw);
                }
            cls_off += (size_t)nth * ntw * cout * cin;
        }
}

/* tc.cuh's fragments of L0 (1 -> 16, k5 s2 p4); the slots no weight fills stay -1 (zero). */
static void tc0_map(int32_t *map, size_t w_off) {
    for (int co = 0; co < 16; co++)
        for (int tap = 0; tap < 25; tap++) map[WL_TF0 + frag(tap, co, 2, 0)] = (int32_t)(w_off + (size_t)co * 25 + tap);
    for (int wh = 0; wh < 3; wh++)
        for (int ww = 0; ww < 3; ww++)
            for (int rh = 0; rh < 2; rh++)
                for (int rw = 0; rw < 2; rw++) {
                    const int kh = rh + 4 - 2 * wh, kw = rw + 4 - 2 * ww;
                    if (kh >= 5 || kw >= 5) continue;
                    for (int co = 0; co < 16; co++)
                        map[WL_TB0 + frag((wh * 3 + ww) * 16 + co, rh * 2 + rw, 1, 1)] =
                            (int32_t)(w_off + (size_t)co * 25 + kh * 5 + kw);
                }
}

void wlayout_map(const wlayout_src *s, int32_t *map) {
    for (int k = 0; k < WL_TOTAL; k++) map[k] = -1;
    conv_map(map, WL_F0, WL_B0, WL_R0, s->w_off[0], s->b_off[0], 1, 16, 5);
    conv_map(map, WL_F1, WL_B1, WL_R1, s->w_off[1], s->b_off[1], 16, 32, 3);
    conv_map(map, WL_F2, WL_B2, WL_R2, s->w_off[2], s->b_off[2], 32, 64, 3);
    conv_map(map, WL_F3, WL_B3, WL_R3, s->w_off[3], s->b_off[3], 64, 64, 3);
    /* dense 256 -> 64: kernel input j = (h*2 + w)*64 + c is PyTorch's column c*4 + h*2 + w */
    for (int co = 0; co < 64; co++) {
        for (int j = 0; j < 256; j++) {
            const int p = j / 64, c = j % 64;
            const int32_t src = (int32_t)(s->w_off[4] + (size_t)co * 256 + (size_t)(c * 4 + p));
            map[WL_F4 + j * 64 + co] = src;
            map[WL_R4 + co * 256 + j] = src;
            map[WL_F4W + (((co / 4) * 8 + j / 32) * 32 + j % 32) * 4 + co % 4] = src;
            map[WL_R4W + ((((j / 16) * 2 + co / 32) * 4 + (j % 16) / 4) * 32 + co % 32) * 4 + j % 4] = src;
        }
        map[WL_B4 + co] = (int32_t)(s->b_off[4] + co);
    }
    tc0_map(map, s->w_off[0]);
    tc_map(map, WL_TF1, WL_TB1, s->w_off[1], 16, 32);
    tc_map(map, WL_TF2, WL_TB2, s->w_off[2], 32, 64);
    tc_map(map, WL_TF3, WL_TB3, s->w_off[3], 64, 64);
    for (int o = 0; o < s->nout; o++) {
        for (int j = 0; j < 64; j++) map[WL_F5 + o * 64 + j] = (int32_t)(s->w_off[5] + (size_t)o * 64 + j);
        map[WL_B5 + o] = (int32_t)(s->b_off[5] + o);
    }
}
