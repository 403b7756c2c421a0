/* train_kernels.cu - the small kernels of a training iteration on the GPU: weight layout,
 * parameter-gradient GEMMs over the training pass's dumps, loss sums, Adam, the replay
 * buffer (init, batch assembly, write-back), plus the device RNG check and the measured
 * ceilings for the benchmark.  Each follows the CPU line named in its comment, in the same
 * float operations where the result must match bit for bit (Adam, noise, clamps). */
#include "kernels.h"

/* ---- weights ---------------------------------------------------------------------------- */
__global__ void k_prep(float *wts, const float *params, const int32_t *map) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k < WL_TOTAL) {
        const float v = map[k] >= 0 ? params[map[k]] : 0.0f;
        wts[k] = k >= WL_TC ? hd_tf32_round(v) : v; /* tc.cuh's fragments are TF32 */
    }
}

cudaError_t cu_probe(void) {
    cudaFuncAttributes fa;
    return cudaFuncGetAttributes(&fa, k_prep);
}

ebm_status cu_prep_weights(float *wts, const float *params, const int32_t *map, cudaStream_t st) {
    k_prep<<<(WL_TOTAL + 255) / 256, 256, 0, st>>>(wts, params, map);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* ---- parameter gradients ------------------------------------------------------------------ */
/* dW[co][n] = sum_r G[r][co] * col[r][n] over rows r = (image, oh, ow) of one split, where
 * col[r][n] is the im2col entry (n = ci*K*K + kh*K + kw, PyTorch's order) and the extra
 * column n = NK is 1 (the bias).  64x64 tiles, 256 threads of 4x4, 16 rows per stage. */
#define WG_T 64
#define WG_R 16
__global__ void __launch_bounds__(256) k_wgrad(float *part, const float *A, const float *G, WgradGeo g, int rows,
                                               int rows_per_split) {
    __shared__ float gs[WG_R][WG_T], cs[WG_R][WG_T];
    const int nk = g.cin * g.k * g.k, ncol = nk + 1, hw = g.ho * g.ho;
    const int co0 = blockIdx.y * WG_T, n0 = blockIdx.x * WG_T, split = blockIdx.z;
    const int r0 = split * rows_per_split, r1 = min(rows, r0 + rows_per_split);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};
    for (int rb = r0; rb < r1; rb += WG_R) {
        for (int i = threadIdx.x; i < WG_R * WG_T; i += 256) {
            const int rr = i / WG_T, c = i % WG_T, r = rb + rr;
            float gv = 0.0f, cv = 0.0f;
            if (r < r1) {
                const int img = r / hw, q = r % hw, oh = q / g.ho, ow = q % g.ho;
                const int co = co0 + c, n = n0 + c;
                if (co < g.cout) gv = G[(size_t)img * g.g_is + (oh * g.g_w + ow) * g.cout + co];
                if (n < nk) {
                    const int ci = n / (g.k * g.k), kh = (n / g.k) % g.k, kw = n % g.k;
                    cv = A[(size_t)img * g.a_is + ((oh * g.s + kh) * g.a_w + ow * g.s + kw) * g.cin + ci];
                } else if (n == nk) {
                    cv = 1.0f;
                }
            }
            gs[rr][c] = gv;
            cs[rr][c] = cv;
        }
        __syncthreads();
#pragma unroll
        for (int rr = 0; rr < WG_R; rr++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = gs[rr][ty * 4 + i], b[i] = cs[rr][tx * 4 + i];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int co = co0 + ty * 4 + i, n = n0 + tx * 4 + j;
            if (co < g.cout && n < ncol) part[((size_t)split * g.cout + co) * ncol + n] = acc[i][j];
        }
}

/* Sums the splits in order into the PyTorch-layout gradient (= not +=). */
__global__ void k_wgrad_sum(float *grads, const float *part, int cout, int ncol, int splits, size_t w_off,
                            size_t b_off) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= cout * ncol) return;
    const int co = i / ncol, n = i % ncol;
    float s = 0.0f;
    for (int k = 0; k < splits; k++) s += part[((size_t)k * cout + co) * ncol + n];
    if (n < ncol - 1) grads[w_off + (size_t)co * (ncol - 1) + n] = s;
    else grads[b_off + co] = s;
}

/* Splits of layer l's rows: enough blocks to fill the GPU, 32+ rows each. */
static int wgrad_splits(const WgradGeo &g, int n) {
    const int rows = n * g.ho * g.ho;
    const int tiles = ((g.cout + WG_T - 1) / WG_T) * ((g.cin * g.k * g.k + 1 + WG_T - 1) / WG_T);
    int s = (264 + tiles - 1) / tiles;
    if (s > rows / 32) s = rows / 32;
    return s < 1 ? 1 : s;
}

size_t cu_wgrad_scratch(int n) {
    size_t mx = 0;
    for (int l = 0; l < 6; l++) {
        const WgradGeo g = wgrad_geo(l, 16);
        const size_t s = (size_t)wgrad_splits(g, n) * g.cout * (g.cin * g.k * g.k + 1);
        mx = s > mx ? s : mx;
    }
    return mx;
}

ebm_status cu_wgrad(float *grads, float *part, float *const *dA, float *const *dG, int n, int nout,
                    const size_t *w_off, const size_t *b_off, cudaStream_t st) {
    for (int l = 0; l < 6; l++) {
        const WgradGeo g = wgrad_geo(l, nout);
        const int rows = n * g.ho * g.ho, splits = wgrad_splits(g, n);
        const int ncol = g.cin * g.k * g.k + 1, per = (rows + splits - 1) / splits;
        const dim3 grid((ncol + WG_T - 1) / WG_T, (g.cout + WG_T - 1) / WG_T, splits);
        k_wgrad<<<grid, 256, 0, st>>>(part, dA[l], dG[l], g, rows, per);
        CU_TRY(cudaGetLastError());
        k_wgrad_sum<<<(g.cout * ncol + 255) / 256, 256, 0, st>>>(grads, part, g.cout, ncol, splits, w_off[l], b_off[l]);
        CU_TRY(cudaGetLastError());
    }
    return EBM_STATUS_OK;
}

/* ---- loss sums and gradient norm (double, one block) --------------------------------------- */
__global__ void __launch_bounds__(1024) k_sums(double *sums, const float *E, int npos, int nneg, const float *g,
                                               size_t np) {
    __shared__ double red[5][32];
    double s[5] = {0, 0, 0, 0, 0};
    for (int i = threadIdx.x; i < npos + nneg; i += blockDim.x) {
        const double e = E[i];
        const int k = i < npos ? 0 : 2;
        s[k] += e, s[k + 1] += e * e;
    }
    for (size_t i = threadIdx.x; i < np; i += blockDim.x) s[4] += (double)g[i] * g[i];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (int k = 0; k < 5; k++) {
        double v = s[k];
        for (int o = 16; o; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) red[k][warp] = v;
    }
    __syncthreads();
    if (threadIdx.x < 5) {
        double v = 0;
        for (int w = 0; w < (int)(blockDim.x / 32); w++) v += red[threadIdx.x][w];
        sums[threadIdx.x] = v;
    }
}

ebm_status cu_sums(double *sums, const float *E, int npos, int nneg, const float *grads, size_t np,
                   cudaStream_t st) {
    k_sums<<<1, 1024, 0, st>>>(sums, E, npos, nneg, grads, np);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* ---- Adam (adam.c, the same float operations in the same order) ----------------------------- */
__global__ void k_adam(float *p, const float *g, float *m, float *v, size_t n, float step_size, float b1, float b2,
                       float eps, float sqrt_bc2) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float gi = g[i];
    const float mi = FADD(FMUL(b1, m[i]), FMUL(FSUB(1.0f, b1), gi));
    const float vi = FADD(FMUL(b2, v[i]), FMUL(FMUL(FSUB(1.0f, b2), gi), gi));
    m[i] = mi, v[i] = vi;
    const float denom = FADD(FDIV(sqrtf(vi), sqrt_bc2), eps);
    p[i] = FADD(p[i], FDIV(FMUL(-step_size, mi), denom));
}

ebm_status cu_adam(float *p, const float *g, float *m, float *v, size_t n, float step_size, float b1, float b2,
                   float eps, float sqrt_bc2, cudaStream_t st) {
    k_adam<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(p, g, m, v, n, step_size, b1, b2, eps, sqrt_bc2);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* ---- replay buffer and batches (trainer.h, "Random numbers of iteration it") ---------------- */

/* lo + (hi - lo) * uniform(seed, START, a, b), 4 elements from block q */
__device__ void noise4(float *x, uint64_t seed, uint32_t a, uint32_t b, int q, float lo, float hi) {
    float u[4];
    hd_uniform4(seed, RNG_STREAM_START, a, b, (uint32_t)q, u);
    for (int j = 0; j < 4; j++) x[4 * q + j] = FADD(lo, FMUL(FSUB(hi, lo), u[j]));
}

__global__ void k_buffer_init(float *buf, int S, int q0, uint64_t seed, float lo, float hi) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)S * 196) return;
    const int q = (int)(i / 196), blk = (int)(i % 196);
    noise4(buf + (size_t)q * 784, seed, (uint32_t)(q0 + q), 1, blk, lo, hi);
}

ebm_status cu_buffer_init(float *buf, int S, int q0, uint64_t seed, float lo, float hi, cudaStream_t st) {
    if (S <= 0) return EBM_STATUS_OK;
    const size_t n = (size_t)S * 196;
    k_buffer_init<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(buf, S, q0, seed, lo, hi);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* Slot and re-init draw of chain j (backend_cpu.c, step 2). */
__device__ int chain_slot(uint64_t seed, uint64_t iter, int j, int S, bool *fresh, float reinit) {
    int slot = (int)(hd_uniform_at(seed, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 0) * S);
    if (slot >= S) slot = S - 1;
    *fresh = hd_uniform_at(seed, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 1) < (double)reinit;
    return slot;
}

__global__ void k_batch(float *x, int *slots, int *yneg, const float *xpos, int B, int N, const float *buf, int S,
                        CuClasses cls, uint64_t seed, uint64_t iter, float dn, float reinit, float lo, float hi,
                        CuShard sh) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)(B + N) * 196) return;
    const int img = (int)(i / 196), q = (int)(i % 196);
    float *xi = x + (size_t)img * 784;
    if (img < B) { /* 1. positives: clamp(x + data_noise * z) */
        float z[4];
        hd_normal4(seed, TRAIN_STREAM_POS, (uint32_t)iter, (uint32_t)(sh.pos0 + img), (uint32_t)q, z);
        for (int j = 0; j < 4; j++) {
            const int e = 4 * q + j;
            xi[e] = hd_clampf(FADD(xpos[(size_t)img * 784 + e], FMUL(dn, z[j])), lo, hi);
        }
        return;
    }
    const int jl = img - B, j = sh.neg0 + jl; /* 2. chain starts: jl in this shard, j in the batch */
    const uint32_t a = (uint32_t)(iter * (uint64_t)sh.n_all + (uint64_t)j);
    bool fresh = true;
    if (S > 0) { /* the slot lies in this GPU's shard of the buffer */
        const int slot = chain_slot(seed, iter, j, S, &fresh, reinit);
        if (q == 0) slots[jl] = slot, yneg[jl] = cls.c[slot % cls.n];
        if (!fresh)
            for (int k = 0; k < 4; k++) xi[4 * q + k] = buf[(size_t)slot * 784 + 4 * q + k];
    } else if (q == 0) {
        yneg[jl] = cls.c[(int)(hd_uniform_at(seed, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 2) * cls.n)];
    }
    if (q == 0 && j < sh.n_marg) yneg[jl] = -1; /* a chain on the marginal E(x) */
    if (fresh) noise4(xi, seed, a, 0, q, lo, hi);
}

ebm_status cu_batch(float *x, int *slots, int *yneg, const float *xpos, int B, int N, const float *buf, int S,
                    const CuClasses *classes, uint64_t seed, uint64_t iter, float dn, float reinit, float lo, float hi,
                    const CuShard *shard, cudaStream_t st) {
    EBM_ASSERT(shard && classes && classes->n >= 1 && classes->n <= TRAIN_MAX_CLASSES);
    const size_t n = (size_t)(B + N) * 196;
    k_batch<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(x, slots, yneg, xpos, B, N, buf, S, *classes, seed, iter, dn,
                                                        reinit, lo, hi, *shard);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* 4. write-back in chain order: the largest j of each slot wins, as in the CPU's loop. */
__global__ void k_win_clear(int *win, const int *slots, int N) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < N) win[slots[j]] = -1;
}
__global__ void k_win_mark(int *win, const int *slots, int N) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < N) atomicMax(&win[slots[j]], j);
}
__global__ void k_win_copy(float *buf, const int *win, const int *slots, const float *xneg, int N) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * 784) return;
    const int j = (int)(i / 784), e = (int)(i % 784);
    if (win[slots[j]] == j) buf[(size_t)slots[j] * 784 + e] = xneg[i];
}

ebm_status cu_writeback(float *buf, int *win, const int *slots, const float *xneg, int N, cudaStream_t st) {
    if (N <= 0) return EBM_STATUS_OK;
    k_win_clear<<<(N + 255) / 256, 256, 0, st>>>(win, slots, N);
    CU_TRY(cudaGetLastError());
    k_win_mark<<<(N + 255) / 256, 256, 0, st>>>(win, slots, N);
    CU_TRY(cudaGetLastError());
    const size_t n = (size_t)N * 784;
    k_win_copy<<<(unsigned)((n + 255) / 256), 256, 0, st>>>(buf, win, slots, xneg, N);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* ---- RNG check --------------------------------------------------------------------------- */
__global__ void k_rng(float *nrm, float *uni, double *uat, uint64_t seed, uint32_t stream, uint32_t a, uint32_t b,
                      int n) {
    const int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q * 4 >= n) return;
    float z[4], u[4];
    hd_normal4(seed, stream, a, b, (uint32_t)q, z);
    hd_uniform4(seed, stream, a, b, (uint32_t)q, u);
    for (int j = 0; j < 4 && 4 * q + j < n; j++) nrm[4 * q + j] = z[j], uni[4 * q + j] = u[j];
    for (int j = 0; j < 4 && 4 * q + j < n; j++) uat[4 * q + j] = hd_uniform_at(seed, stream, a, b, (uint32_t)(4 * q + j));
}

ebm_status cu_rng_fill(float *normal, float *uniform, double *uat, uint64_t seed, uint32_t stream, uint32_t a,
                       uint32_t b, int n, cudaStream_t st) {
    const int q = (n + 3) / 4;
    k_rng<<<(q + 127) / 128, 128, 0, st>>>(normal, uniform, uat, seed, stream, a, b, n);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}

/* ---- measured ceilings ------------------------------------------------------------------- */
/* 8 independent FMA chains per thread, 4096 iterations: nothing but FFMA in the loop. */
__global__ void k_fma(float *out, float seed) {
    float a[8];
    for (int i = 0; i < 8; i++) a[i] = seed + threadIdx.x + i;
    const float b = 0.999999f, c = 1e-7f;
    for (int it = 0; it < 4096; it++)
#pragma unroll
        for (int i = 0; i < 8; i++) a[i] = fmaf(a[i], b, c);
    float s = 0;
    for (int i = 0; i < 8; i++) s += a[i];
    if (s == 12345.678f) out[0] = s; /* keeps the loop alive */
}

ebm_status cu_peak_fma(double *flops) {
    int dev, sms;
    CU_TRY(cudaGetDevice(&dev));
    CU_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    float *out;
    CU_TRY(cudaMalloc(&out, sizeof(float)));
    cudaEvent_t e0, e1;
    CU_TRY(cudaEventCreate(&e0));
    CU_TRY(cudaEventCreate(&e1));
    const int blocks = sms * 8, nt = 256;
    k_fma<<<blocks, nt>>>(out, 1.0f); /* warm-up */
    CU_TRY(cudaGetLastError());
    CU_TRY(cudaEventRecord(e0));
    for (int r = 0; r < 5; r++) k_fma<<<blocks, nt>>>(out, 1.0f);
    CU_TRY(cudaGetLastError());
    CU_TRY(cudaEventRecord(e1));
    CU_TRY(cudaEventSynchronize(e1));
    float ms;
    CU_TRY(cudaEventElapsedTime(&ms, e0, e1));
    *flops = 5.0 * blocks * nt * 4096.0 * 8 * 2 / (ms * 1e-3);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    CU_TRY(cudaFree(out));
    return EBM_STATUS_OK;
}

ebm_status cu_peak_copy(double *bps) {
    const size_t bytes = (size_t)1 << 30;
    void *a, *b;
    CU_TRY(cudaMalloc(&a, bytes));
    if (cudaMalloc(&b, bytes) != cudaSuccess) {
        cudaFree(a);
        return ebm_fail(EBM_STATUS_NOMEM, "bench: no room for two 1 GiB buffers on the GPU");
    }
    CU_TRY(cudaMemset(a, 1, bytes));
    CU_TRY(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
    cudaEvent_t e0, e1;
    CU_TRY(cudaEventCreate(&e0));
    CU_TRY(cudaEventCreate(&e1));
    CU_TRY(cudaEventRecord(e0));
    for (int r = 0; r < 5; r++) CU_TRY(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
    CU_TRY(cudaEventRecord(e1));
    CU_TRY(cudaEventSynchronize(e1));
    float ms;
    CU_TRY(cudaEventElapsedTime(&ms, e0, e1));
    *bps = 5.0 * 2 * (double)bytes / (ms * 1e-3);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    CU_TRY(cudaFree(a));
    CU_TRY(cudaFree(b));
    return EBM_STATUS_OK;
}

/* ---- replica checksum (data-parallel training) ---------------------------------------------- */
/* Sum over i of splitmix64(i << 32 | bits(p[i])): integer addition is order-free, so the
 * value depends on the bits alone, and any changed bit or moved value changes it. */
__global__ void k_checksum(unsigned long long *out, const float *p, size_t n) {
    unsigned long long s = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned long long z = ((unsigned long long)i << 32 | __float_as_uint(p[i])) + 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s += z ^ (z >> 31);
    }
    for (int o = 16; o; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (threadIdx.x % 32 == 0) atomicAdd(out, s);
}

ebm_status cu_checksum(unsigned long long *out, const float *p, size_t n, cudaStream_t st) {
    CU_TRY(cudaMemsetAsync(out, 0, sizeof *out, st));
    k_checksum<<<64, 256, 0, st>>>(out, p, n);
    CU_TRY(cudaGetLastError());
    return EBM_STATUS_OK;
}
