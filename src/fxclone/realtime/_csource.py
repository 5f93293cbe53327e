"""C source of the native WaveNet kernel (compiled on first use by :mod:`fxclone.realtime.native`).

Kept as a Python string so that it ships with the package whatever the build backend.
The kernel reads the same tables as the numba kernel (:mod:`fxclone.realtime.wavenet`); a
library is built for the layer shapes a model needs (``-DSHAPES(X)=...``).
It uses GCC/Clang vector extensions: one layer is computed for ``VL`` samples at a time
with the layer's output channels held in vector registers (the channel count is a
compile-time constant of each instantiated layer function), so every input sample is
loaded once per layer and feeds ``mid`` fused multiply-adds.
"""

SOURCE = r"""
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#ifndef SHAPES
#define SHAPES(X) X(16, 0) X(8, 0)
#endif

#if defined(__AVX512F__)
#define VL 16
#else
#define VL 8
#endif
#define TS 64 /* row stride of the tile scratch buffers (a tile is at most TS samples) */

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4), may_alias));
typedef int vi __attribute__((vector_size(VL * 4)));

static inline vf ld(const float *p) { return *(const vfu *)p; }
static inline void st(float *p, vf v) { *(vfu *)p = v; }
static inline vf splat(float s) { return (vf){0} + s; }
static inline vf vmin(vf a, vf b) { vi m = a < b; return (vf)(((vi)a & m) | ((vi)b & ~m)); }
static inline vf vmax(vf a, vf b) { vi m = a > b; return (vf)(((vi)a & m) | ((vi)b & ~m)); }

static inline vf vtanh(vf x) {
    x = vmin(vmax(x, splat(-7.90531110763549805f)), splat(7.90531110763549805f));
    vf x2 = x * x;
    vf p = splat(-2.76076847742355e-16f);
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    vf q = splat(1.19825839466702e-06f);
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;
}
static inline vf vsigmoid(vf x) { return 0.5f + 0.5f * vtanh(0.5f * x); }
static inline vf vact(vf x, long act) {
    switch (act) {
    case 0: return vtanh(x);
    case 1: return vmax(x, splat(0.0f));
    case 2: return vmin(vmax(x, splat(-1.0f)), splat(1.0f));
    default: return vsigmoid(x);
    }
}

enum { L_C, L_MID, L_K, L_D, L_ACT, L_GATED, L_W, L_MX, L_W1, L_B1, L_HIST, L_PAD, L_CB, L_CO,
       L_COLS };
enum { A_CIN, A_C, A_HEAD, A_FIRST, A_N, A_R, A_H, A_HB, A_COLS };

/* One layer over nvec vectors of samples. base: channel 0 of this layer's history at the
   tile's first tap; row: the history row length; out: the next layer's input rows. */
#define DEFINE_LAYER(C, GATED)                                                              \
static void layer_##C##_##GATED(const float *base, long row, long d, long k, const float *w,\
        const long *L, const float *cb, const float *xs, long cin, float *S, float *out,   \
        long out_stride, long nvec) {                                                       \
    enum { MID = GATED ? 2 * C : C };                                                       \
    const float *W = w + L[L_W], *MX = w + L[L_MX], *W1 = w + L[L_W1], *B1 = w + L[L_B1];   \
    long act = L[L_ACT], pad = L[L_PAD];                                                    \
    for (long v = 0; v < nvec; v++) {                                                       \
        long t = v * VL;                                                                    \
        vf z[MID], a[C];                                                                    \
        _Pragma("GCC unroll 64") for (int o = 0; o < MID; o++) z[o] = splat(cb[o]);         \
        for (long ci = 0; ci < cin; ci++) {                                                 \
            vf x = ld(xs + ci * TS + t);                                                    \
            _Pragma("GCC unroll 64") for (int o = 0; o < MID; o++) z[o] += MX[o * cin + ci] * x; \
        }                                                                                   \
        for (long i = 0; i < C; i++) {                                                      \
            for (long kk = 0; kk < k; kk++) {                                               \
                vf x = ld(base + i * row + kk * d + t);                                     \
                const float *wc = W + i * k + kk;                                           \
                _Pragma("GCC unroll 64") for (int o = 0; o < MID; o++)                      \
                    z[o] += wc[o * C * k] * x;                                              \
            }                                                                               \
        }                                                                                   \
        _Pragma("GCC unroll 64") for (int o = 0; o < C; o++) {                              \
            a[o] = vact(z[o], act);                                                         \
            if (GATED) a[o] *= vsigmoid(z[o + (GATED ? C : 0)]);                            \
            st(S + o * TS + t, ld(S + o * TS + t) + a[o]);                                  \
        }                                                                                   \
        _Pragma("GCC unroll 64") for (int o = 0; o < C; o++) {                              \
            vf r = ld(base + o * row + pad + t) + B1[o];                                    \
            _Pragma("GCC unroll 64") for (int i = 0; i < C; i++) r += W1[o * C + i] * a[i]; \
            st(out + o * out_stride + t, r);                                                \
        }                                                                                   \
    }                                                                                       \
}

/* SHAPES(X) lists the (channels, gated) layer shapes to instantiate; defined by the caller. */
#define DEF(C, G) DEFINE_LAYER(C, G)
SHAPES(DEF)

typedef void (*layer_fn)(const float *, long, long, long, const float *, const long *,
                         const float *, const float *, long, float *, float *, long, long);

static layer_fn pick(long c, long gated) {
#define CASE(C, G) if (c == C && gated == G) return layer_##C##_##G;
    SHAPES(CASE)
    return 0;
}

/* dst rows (stride ds) = bias + w (rows x cols) @ src rows (stride TS). */
static void matmul(float *dst, long ds, const float *w, const float *bias, const float *src,
                   long rows, long cols, long nvec) {
    for (long v = 0; v < nvec; v++) {
        long t = v * VL;
        for (long o = 0; o < rows; o++) {
            vf r = splat(bias ? bias[o] : 0.0f);
            for (long i = 0; i < cols; i++) r += w[o * cols + i] * ld(src + i * TS + t);
            st(dst + o * ds + t, r);
        }
    }
}

long wn_run(const float *x, float *y, long stride, long batch, long cin0, long cout, long total,
            const float *w, const float *bias, long nbias, const long *lay, long nl,
            const long *arr, long na, float *hist, long used, long span, float scale,
            float *xs, float *S, float *P, float *H) {
#if defined(__SSE__)
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* flush denormals to zero (FTZ, DAZ) while the kernel runs */
#endif
    for (long t0 = 0; t0 < total; ) {
        long n = total - t0 < TS ? total - t0 : TS;
        long nvec = (n + VL - 1) / VL;
        if (used + nvec * VL > span) { /* move each row's history to its front */
            for (long li = 0; li < nl; li++) {
                const long *L = lay + li * L_COLS;
                long row = L[L_PAD] + span;
                for (long r = 0; r < batch * L[L_C]; r++) {
                    float *p = hist + L[L_HIST] + r * row;
                    memmove(p, p + used, L[L_PAD] * sizeof(float));
                }
            }
            used = 0;
        }
        for (long b = 0; b < batch; b++) {
            const float *cb = bias + b * nbias;
            for (long ci = 0; ci < cin0; ci++) {
                memset(xs + ci * TS, 0, TS * sizeof(float));
                memcpy(xs + ci * TS, x + (b * cin0 + ci) * stride + t0, n * sizeof(float));
            }
            for (long ai = 0; ai < na; ai++) {
                const long *A = arr + ai * A_COLS;
                long c = A[A_C], first = A[A_FIRST], last = first + A[A_N];
                const long *L = lay + first * L_COLS;
                long row = L[L_PAD] + span;
                float *in = hist + L[L_HIST] + b * c * row + used;
                matmul(in + L[L_PAD], row, w + A[A_R], 0, ai ? P : xs, c, A[A_CIN], nvec);
                for (long o = 0; o < c; o++) {
                    if (ai) memcpy(S + o * TS, H + o * TS, TS * sizeof(float));
                    else memset(S + o * TS, 0, TS * sizeof(float));
                }
                for (long li = first; li < last; li++) {
                    L = lay + li * L_COLS;
                    float *out = P;
                    long out_stride = TS, nrow = 0;
                    float *next = 0;
                    if (li + 1 < last) {
                        const long *N = L + L_COLS;
                        nrow = N[L_PAD] + span;
                        next = hist + N[L_HIST] + b * c * nrow + used;
                        out = next + N[L_PAD];
                        out_stride = nrow;
                    }
                    pick(c, L[L_GATED])(in, row, L[L_D], L[L_K], w, L, cb + L[L_CB], xs, cin0,
                                        S, out, out_stride, nvec);
                    in = next;
                    row = nrow;
                }
                matmul(H, TS, w + A[A_H], A[A_HB] >= 0 ? w + A[A_HB] : 0, S, A[A_HEAD], c, nvec);
            }
            for (long o = 0; o < cout; o++) {
                float *yr = y + (b * cout + o) * stride + t0;
                for (long t = 0; t < n; t++) yr[t] = scale * H[o * TS + t];
            }
        }
        used += n;
        t0 += n;
    }
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    return used;
}

/* The same with every argument in one table, so that a block costs one cheap call:
   ctx = {batch, cin0, cout, nbias, nl, na, span, used, w, bias, lay, arr, hist, xs, S, P, H,
          x, y, total, stride, scale}: ctx[8..18] are addresses, ctx[21] holds the float
   scale's bits; x and y rows lie stride floats apart; ctx[7] (used) is updated. */
void wn_process(long *ctx) {
    float scale;
    memcpy(&scale, ctx + 21, sizeof scale);
    ctx[7] = wn_run((const float *)ctx[17], (float *)ctx[18], ctx[20], ctx[0], ctx[1], ctx[2],
                    ctx[19], (const float *)ctx[8], (const float *)ctx[9], ctx[3],
                    (const long *)ctx[10], ctx[4], (const long *)ctx[11], ctx[5],
                    (float *)ctx[12], ctx[7], ctx[6], scale, (float *)ctx[13],
                    (float *)ctx[14], (float *)ctx[15], (float *)ctx[16]);
}
"""
