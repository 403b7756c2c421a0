/* langevin.c - ULA and MALA chains on an energy callback (the math is in langevin.h).
 *
 * One step = one call of the energy on the whole batch: ULA evaluates at the new points,
 * MALA at the proposals while it keeps the current points' energies and clipped gradients
 * from the step that accepted them.  Everything else (noise, update, accept) runs in
 * parallel over chains; each chain's numbers depend only on (seed, chain, step), never on
 * the thread that computes them. */
#include "langevin.h"

#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "../core/rng.h"

float langevin_sigma(const langevin_params *p) { return p->sigma < 0 ? sqrtf(2.0f * p->eps) : p->sigma; }

int langevin_is_snapshot_step(int t, int steps, int every) {
    return t == 0 || t == steps || (every > 0 && t % every == 0);
}

static ebm_status check_params(int n, int dim, int steps, const langevin_params *p) {
    if (n < 1 || dim < 1)
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: need at least one chain of at least one value (got %d chains of %d)",
                        n, dim);
    if (steps < 0) return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: --steps must be >= 0 (got %d)", steps);
    if (!(p->eps >= 0) || !isfinite(p->eps))
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: --eps must be finite and >= 0 (got %g); try 10 with a clipped gradient",
                        (double)p->eps);
    float sigma = langevin_sigma(p);
    if (!(sigma >= 0) || !isfinite(sigma))
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: noise sigma must be finite (got %g); use a negative value for sqrt(2 eps)",
                        (double)p->sigma);
    if (p->mala && sigma == 0)
        return ebm_fail(EBM_STATUS_BAD_ARG,
                        "langevin: MALA needs noise sigma > 0 (its proposal density is undefined without noise)");
    if (isnan(p->grad_clip))
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: gradient clip is NaN; use a value <= 0 to disable clipping");
    if (isnan(p->lo) || isnan(p->hi) || p->lo > p->hi)
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: bad data range [%g, %g]; need lo <= hi", (double)p->lo,
                        (double)p->hi);
    return EBM_STATUS_OK;
}

/* Calls the energy, then checks every energy and gradient of the rows not marked in skip
 * (NULL: all rows), then clips the gradients.  Clipping comes after the check because
 * fmaxf(NaN, -c) is -c and would hide the NaN. */
static ebm_status evaluate(energy_fn f, void *ctx, const float *x, int n, int dim, float *E, float *g,
                           const unsigned char *skip, float clip, int step, int steps, uint32_t chain0) {
    ebm_status s = f(ctx, x, n, E, g);
    if (s != EBM_STATUS_OK) {
        ebm_error_prefix("langevin step %d of %d", step, steps);
        return s;
    }
    int bad = n;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (int c = 0; c < n; c++) {
        if (skip && skip[c]) continue;
        int ok = isfinite(E[c]);
        const float *gc = g + (size_t)c * dim;
        for (int j = 0; j < dim && ok; j++) ok = isfinite(gc[j]);
        if (!ok && c < bad) bad = c;
    }
    if (bad < n) {
        char what[96];
        if (!isfinite(E[bad])) {
            snprintf(what, sizeof what, "energy %g", (double)E[bad]);
        } else {
            const float *gb = g + (size_t)bad * dim;
            int j = 0;
            while (isfinite(gb[j])) j++;
            snprintf(what, sizeof what, "gradient element %d = %g (energy %g)", j, (double)gb[j], (double)E[bad]);
        }
        return ebm_fail(EBM_STATUS_DIVERGED,
                        "Langevin diverged at step %d of %d%s: chain %u has %s; lower --eps or check the model", step,
                        steps, step == 0 ? " (the starting point)" : "", chain0 + (uint32_t)bad, what);
    }
    if (clip > 0) {
        size_t len = (size_t)n * dim;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < len; i++) g[i] = fminf(fmaxf(g[i], -clip), clip);
    }
    return EBM_STATUS_OK;
}

/* ULA move of every chain at step index t; noise scratch xi (n, dim). */
static void ula_move(float *x, const float *cg, float *xi, int n, int dim, int t, const langevin_params *p,
                     float sigma) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < n; c++) {
        float *xc = x + (size_t)c * dim, *nc = xi + (size_t)c * dim;
        const float *gc = cg + (size_t)c * dim;
        rng_normal_fill(p->seed, RNG_STREAM_NOISE, p->chain0 + (uint32_t)c, p->step0 + (uint32_t)t, nc, dim);
        for (int j = 0; j < dim; j++) {
            float v = xc[j] - p->eps * gc[j] + sigma * nc[j];
            xc[j] = fminf(fmaxf(v, p->lo), p->hi);
        }
    }
}

/* MALA proposals y for step index t.  A proposal outside [lo, hi] is rejected without
 * looking at its energy; its row of y is set to x so the energy call sees a valid point. */
static void mala_propose(const float *x, const float *cg, float *y, unsigned char *out, int n, int dim, int t,
                         const langevin_params *p, float sigma) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < n; c++) {
        const float *xc = x + (size_t)c * dim, *gc = cg + (size_t)c * dim;
        float *yc = y + (size_t)c * dim;
        rng_normal_fill(p->seed, RNG_STREAM_NOISE, p->chain0 + (uint32_t)c, p->step0 + (uint32_t)t, yc, dim);
        int outside = 0;
        for (int j = 0; j < dim; j++) {
            float v = xc[j] - p->eps * gc[j] + sigma * yc[j];
            outside |= !(v >= p->lo && v <= p->hi);
            yc[j] = v;
        }
        out[c] = (unsigned char)outside;
        if (outside) memcpy(yc, xc, (size_t)dim * sizeof *yc);
    }
}

/* Metropolis-Hastings accept/reject of the proposals; returns the number accepted.
 * log q(b|a) = -|b - a + eps cg(a)|^2 / (2 sigma^2); expanding both squares the |y-x|^2
 * terms cancel exactly, which keeps the ratio accurate when sigma is small:
 *   log q(x|y) - log q(y|x) = eps (y-x).(cg(x)+cg(y)) / sigma^2
 *                             + eps^2 (|cg(x)|^2 - |cg(y)|^2) / (2 sigma^2). */
static long mala_accept(float *x, float *E, float *cg, const float *y, const float *Ey, const float *cgy,
                        const unsigned char *out, int n, int dim, int t, const langevin_params *p, float sigma) {
    long accepted = 0;
    const double eps = p->eps, inv_s2 = 1.0 / ((double)sigma * sigma);
#pragma omp parallel for schedule(static) reduction(+ : accepted)
    for (int c = 0; c < n; c++) {
        if (out[c]) continue;
        float *xc = x + (size_t)c * dim, *gx = cg + (size_t)c * dim;
        const float *yc = y + (size_t)c * dim, *gy = cgy + (size_t)c * dim;
        double cross = 0, gx2 = 0, gy2 = 0;
        for (int j = 0; j < dim; j++) {
            cross += ((double)yc[j] - xc[j]) * ((double)gx[j] + gy[j]);
            gx2 += (double)gx[j] * gx[j];
            gy2 += (double)gy[j] * gy[j];
        }
        double log_ratio = (double)E[c] - Ey[c] + eps * cross * inv_s2 + eps * eps * (gx2 - gy2) * 0.5 * inv_s2;
        double u = rng_uniform_at(p->seed, RNG_STREAM_ACCEPT, p->chain0 + (uint32_t)c, p->step0 + (uint32_t)t, 0);
        if (log(u) < log_ratio) {
            memcpy(xc, yc, (size_t)dim * sizeof *xc);
            memcpy(gx, gy, (size_t)dim * sizeof *gx);
            E[c] = Ey[c];
            accepted++;
        }
    }
    return accepted;
}

ebm_status langevin_run(energy_fn f, void *ctx, float *x, int n, int dim, int steps, const langevin_params *p,
                        langevin_stats *stats, langevin_snapshot_fn snapshot, void *ud, int every) {
    EBM_ASSERT(f && x && p);
    EBM_TRY(check_params(n, dim, steps, p));
    const float sigma = langevin_sigma(p);
    const int mala = p->mala != 0;
    /* ULA evaluates at the end only for energies someone reads. */
    const int final_eval = mala || stats || snapshot;
    if (stats) memset(stats, 0, sizeof *stats);
    if (steps == 0 && !final_eval) return EBM_STATUS_OK;

    /* Scratch, carved from one allocation: E, g at x; y (noise or proposal); MALA also Ey,
     * gy at y and the out-of-range flags. */
    const size_t nd = (size_t)n * dim;
    const size_t floats = 2 * nd + n + (mala ? nd + n : 0);
    float *mem = ebm_alloc(floats * sizeof(float) + (mala ? (size_t)n : 0));
    if (!mem) return ebm_fail(EBM_STATUS_NOMEM, "langevin: out of memory for %d chains of %d values", n, dim);
    float *E = mem, *g = E + n, *y = g + nd;
    float *Ey = mala ? y + nd : NULL, *gy = mala ? Ey + n : NULL;
    unsigned char *out = mala ? (unsigned char *)(gy + nd) : NULL;

    long proposed = 0, accepted = 0;
    int have_E = 0;
    ebm_status s = evaluate(f, ctx, x, n, dim, E, g, NULL, p->grad_clip, 0, steps, p->chain0);
    have_E = s == EBM_STATUS_OK;
    for (int t = 0; s == EBM_STATUS_OK; t++) {
        if (snapshot && langevin_is_snapshot_step(t, steps, every)) {
            s = snapshot(ud, t, x, E, n, dim);
            if (s != EBM_STATUS_OK) break;
        }
        if (t == steps) break;
        if (mala) {
            mala_propose(x, g, y, out, n, dim, t, p, sigma);
            s = evaluate(f, ctx, y, n, dim, Ey, gy, out, p->grad_clip, t + 1, steps, p->chain0);
            if (s != EBM_STATUS_OK) break;
            accepted += mala_accept(x, E, g, y, Ey, gy, out, n, dim, t, p, sigma);
            proposed += n;
        } else {
            ula_move(x, g, y, n, dim, t, p, sigma);
            proposed += n;
            accepted += n;
            if (t + 1 < steps || final_eval) {
                s = evaluate(f, ctx, x, n, dim, E, g, NULL, p->grad_clip, t + 1, steps, p->chain0);
                have_E = s == EBM_STATUS_OK;
            } else {
                have_E = 0;
            }
        }
    }
    if (stats) {
        stats->proposed = proposed;
        stats->accepted = accepted;
        double sum = 0;
        for (int c = 0; c < n; c++) sum += E[c];
        stats->mean_energy = have_E ? sum / n : NAN;
    }
    ebm_free(mem);
    return s;
}
