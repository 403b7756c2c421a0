#!/usr/bin/env python3
"""Fits the polynomials of src/core/boxmuller.h (Remez exchange, relative error) and prints
their coefficients rounded to float32, highest degree first, as the header uses them:

  log  Q(f) = (ln(1+f) - f) / f^2          on [sqrt(1/2) - 1, sqrt(2) - 1], degree 9
  sin  S(w) = (sin(pi t/4) / t - pi/4) / w on w = t^2 in [0, 1],           degree 3
  cos  C(w) = (cos(pi t/4) - 1) / w        on w = t^2 in [0, 1],           degree 3

The float rounding of the coefficients is not re-optimised: tests/test_boxmuller.c measures
the result over every grid input, which is what counts.  Needs mpmath (pip install mpmath).

Usage: python3 scripts/boxmuller_fit.py"""
import struct

import mpmath as mp

mp.mp.dps = 40


def f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def remez(g, a, b, n, iters=30, grid=4000):
    """Degree-n polynomial minimising max |p/g - 1| on [a, b]; returns (coefficients, error)."""
    a, b = mp.mpf(a), mp.mpf(b)
    wt = lambda x: 1 / abs(g(x))
    xs = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (n + 1)) for i in range(n + 2)]
    for _ in range(iters):
        A, rhs = mp.matrix(n + 2, n + 2), mp.matrix(n + 2, 1)
        for i, x in enumerate(xs):
            for j in range(n + 1):
                A[i, j] = x**j
            A[i, n + 1] = (-1) ** i / wt(x)
            rhs[i] = g(x)
        sol = mp.lu_solve(A, rhs)
        c = [sol[j] for j in range(n + 1)]
        err = lambda x: (mp.polyval(c[::-1], x) - g(x)) * wt(x)
        pts = [a + (b - a) * i / grid for i in range(grid + 1)]
        vals = [err(x) for x in pts]
        ext, i = [], 0
        while i <= grid:  # the largest |error| of each run of one sign
            s, j, best = mp.sign(vals[i]), i, i
            while j <= grid and mp.sign(vals[j]) == s:
                best = j if abs(vals[j]) > abs(vals[best]) else best
                j += 1
            ext.append(best)
            i = j
        while len(ext) > n + 2:
            ext.pop(0 if abs(vals[ext[0]]) < abs(vals[ext[-1]]) else -1)
        if len(ext) < n + 2:
            break
        xs = []
        for k in ext:
            x = pts[k]
            if 0 < k < grid:
                try:
                    r = mp.findroot(lambda y: mp.diff(err, y), pts[k])
                    x = r if pts[k - 1] <= r <= pts[k + 1] else x
                except (ValueError, ZeroDivisionError):
                    pass
            xs.append(x)
    return c, max(abs(err(x)) for x in xs)


def main():
    q = mp.pi / 4
    tiny = mp.mpf("1e-20")
    fits = {
        "log": (lambda f: (mp.log1p(f) - f) / f**2 if abs(f) > tiny else -mp.mpf(1) / 2 + f / 3,
                mp.sqrt(0.5) - 1, mp.sqrt(2) - 1, 9),
        "sin": (lambda w: (mp.sin(q * mp.sqrt(w)) / mp.sqrt(w) - q) / w if w > tiny else -q**3 / 6,
                0, 1, 3),
        "cos": (lambda w: (mp.cos(q * mp.sqrt(w)) - 1) / w if w > tiny else -q**2 / 2, 0, 1, 3),
    }
    for name, (g, a, b, n) in fits.items():
        c, e = remez(g, a, b, n)
        print("%s: relative error %s; coefficients, highest degree first:" % (name, mp.nstr(e, 3)))
        print("   " + ", ".join("%.9e" % f32(x) for x in reversed(c)))
    hi = f32(q)
    print("pi/4 = %.9e %+.9e" % (hi, f32(q - mp.mpf(hi))))


if __name__ == "__main__":
    main()
