"""Small matrix products over a tile of samples, written so that LLVM vectorises them.

A tile holds up to ``T`` consecutive samples of several channels. Destination rows lie ``T``
floats apart in one buffer; source rows may lie anywhere (``src[base + coff[co + j]:]`` is
column ``j``), so a dilated convolution reads its taps straight from the history buffers.
Products are computed in 4x4 register blocks: per vector of samples, four source rows are
loaded once and feed sixteen multiply-adds into four destination rows, and the loops run
along time, where SIMD lanes are.
"""

from __future__ import annotations

from numba import njit

T = 64  # samples per tile, and the row stride of every tile buffer


@njit(fastmath=True, cache=True, error_model="numpy")
def _b44(d, w, wo, ld, s0, s1, s2, s3, n):
    a00, a01, a02, a03 = w[wo], w[wo + 1], w[wo + 2], w[wo + 3]
    wo += ld
    a10, a11, a12, a13 = w[wo], w[wo + 1], w[wo + 2], w[wo + 3]
    wo += ld
    a20, a21, a22, a23 = w[wo], w[wo + 1], w[wo + 2], w[wo + 3]
    wo += ld
    a30, a31, a32, a33 = w[wo], w[wo + 1], w[wo + 2], w[wo + 3]
    for t in range(n):
        x0, x1, x2, x3 = s0[t], s1[t], s2[t], s3[t]
        d[t] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
        d[T + t] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
        d[2 * T + t] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
        d[3 * T + t] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3


@njit(fastmath=True, cache=True, error_model="numpy")
def _b41(d, w, wo, ld, s0, n):
    a0, a1, a2, a3 = w[wo], w[wo + ld], w[wo + 2 * ld], w[wo + 3 * ld]
    for t in range(n):
        x0 = s0[t]
        d[t] += a0 * x0
        d[T + t] += a1 * x0
        d[2 * T + t] += a2 * x0
        d[3 * T + t] += a3 * x0


@njit(fastmath=True, cache=True, error_model="numpy")
def _b14(d, w, wo, s0, s1, s2, s3, n):
    a0, a1, a2, a3 = w[wo], w[wo + 1], w[wo + 2], w[wo + 3]
    for t in range(n):
        d[t] += a0 * s0[t] + a1 * s1[t] + a2 * s2[t] + a3 * s3[t]


@njit(fastmath=True, cache=True, error_model="numpy")
def _b11(d, a0, s0, n):
    for t in range(n):
        d[t] += a0 * s0[t]


@njit(fastmath=True, cache=True, error_model="numpy")
def gemm(dst, d0, w, wo, ld, src, base, coff, co, rows, cols, n):
    """``dst[d0 + o*T + t] += sum_j w[wo + o*ld + j] * src[base + coff[co + j] + t]``.

    For ``o < rows``, ``j < cols``, ``t < n``; ``dst`` must not overlap the source rows.
    """
    o = 0
    while o < rows:
        d = dst[d0 + o * T :]
        wr = wo + o * ld
        j = 0
        if o + 4 <= rows:
            while j + 4 <= cols:
                c0, c1 = base + coff[co + j], base + coff[co + j + 1]
                c2, c3 = base + coff[co + j + 2], base + coff[co + j + 3]
                _b44(d, w, wr + j, ld, src[c0:], src[c1:], src[c2:], src[c3:], n)
                j += 4
            while j < cols:
                _b41(d, w, wr + j, ld, src[base + coff[co + j] :], n)
                j += 1
            o += 4
        else:
            while j + 4 <= cols:
                c0, c1 = base + coff[co + j], base + coff[co + j + 1]
                c2, c3 = base + coff[co + j + 2], base + coff[co + j + 3]
                _b14(d, w, wr + j, src[c0:], src[c1:], src[c2:], src[c3:], n)
                j += 4
            while j < cols:
                _b11(d, w[wr + j], src[base + coff[co + j] :], n)
                j += 1
            o += 1


@njit(fastmath=True, cache=True, error_model="numpy")
def fill(dst, d0, value, n):
    d = dst[d0:]
    for t in range(n):
        d[t] = value


@njit(fastmath=True, cache=True, error_model="numpy")
def copy(dst, d0, src, s0, n):
    d = dst[d0:]
    s = src[s0:]
    for t in range(n):
        d[t] = s[t]
