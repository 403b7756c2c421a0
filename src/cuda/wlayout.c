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
        }
        map[WL_B4 + co] = (int32_t)(s->b_off[4] + co);
    }
    for (int o = 0; o < s->nout; o++) {
        for (int j = 0; j < 64; j++) map[WL_F5 + o * 64 + j] = (int32_t)(s->w_off[5] + (size_t)o * 64 + j);
        map[WL_B5 + o] = (int32_t)(s->b_off[5] + o);
    }
}
