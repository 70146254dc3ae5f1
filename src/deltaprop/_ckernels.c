/* The elementwise work of a training step, compiled: ReLU forward and backward, softmax, cross-entropy, the Adam
 * update; and the check for NaN or infinite numbers that fit makes over the whole input before training. BLAS
 * calls without ctypes (gemm, axpy), and with them the forward and backward pass of an MLP (and SGD's update) in
 * one call (sgd_step; its maths is in _sgd_step.h; deltaprop.compiled_step uses it).
 *
 * Each of these is a single pass over a small array (a 128 x 512 batch of a hidden layer is 256 KB), where a
 * NumPy expression costs one call and often a temporary per operator. deltaprop.native calls these functions
 * for C-contiguous float32/float64 arrays and computes the same thing with NumPy where this module was not built
 * (it is optional: pip installs deltaprop without it when no C compiler is at hand).
 *
 * Arrays come in through the buffer protocol (no NumPy headers are needed to build this file); the caller checks
 * shapes and dtypes, and the functions here check them again before touching memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef enum { F32, F64 } kind_t;

/* 1 and the kind when a buffer holds float32 or float64 numbers (native byte order), else 0 */
static int float_kind(const Py_buffer *view, kind_t *kind) {
    const char *f = view->format ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    if (f[0] == 'f' && f[1] == '\0' && view->itemsize == 4) {
        *kind = F32;
        return 1;
    }
    if (f[0] == 'd' && f[1] == '\0' && view->itemsize == 8) {
        *kind = F64;
        return 1;
    }
    return 0;
}

/* A C-contiguous float32/float64 buffer of `obj`; writable if asked. Returns 0 and sets an exception on failure. */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable, kind_t *kind, const char *name) {
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s float32 or float64 array", name,
                     writable ? ", writable" : "");
        return 0;
    }
    if (!float_kind(view, kind)) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s must hold float32 or float64 numbers", name);
        return 0;
    }
    return 1;
}

static Py_ssize_t count(const Py_buffer *v) { return v->len / v->itemsize; }

/* rows and columns of a 2-D buffer (a 1-D one is one row) */
static int shape2(const Py_buffer *v, Py_ssize_t *rows, Py_ssize_t *cols, const char *name) {
    if (v->ndim == 2) {
        *rows = v->shape[0];
        *cols = v->shape[1];
    } else if (v->ndim == 1) {
        *rows = 1;
        *cols = v->shape[0];
    } else {
        PyErr_Format(PyExc_ValueError, "%s must be a 1-D or 2-D array", name);
        return 0;
    }
    return 1;
}

static void release(Py_buffer *views, int n) {
    for (int i = 0; i < n; i++) PyBuffer_Release(&views[i]);
}

/* Buffers of args[0..n-1], all of one kind and (when same_count) of one length. */
static int get_all(PyObject *const *args, Py_ssize_t nargs, int n, const int *writable, const char *const *names,
                   Py_buffer *views, kind_t *kind, int same_count, const char *fname) {
    if (nargs != n) {
        PyErr_Format(PyExc_TypeError, "%s takes %d arrays, got %zd", fname, n, nargs);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        kind_t k;
        if (!get_buffer(args[i], &views[i], writable[i], &k, names[i])) {
            release(views, i);
            return 0;
        }
        if (i == 0) {
            *kind = k;
        } else if (k != *kind || (same_count && count(&views[i]) != count(&views[0]))) {
            release(views, i + 1);
            PyErr_Format(PyExc_ValueError, "%s: %s must have the dtype%s of %s", fname, names[i],
                         same_count ? " and size" : "", names[0]);
            return 0;
        }
    }
    return 1;
}

/* adam(theta, g, m, v, beta1, beta2, eps_hat, step_size): one Adam update in one pass, in the order and the
 * rounding of deltaprop.optim.Adam's NumPy code (each constant rounded to the arrays' dtype once):
 *     m ← m + (1 − β1)(g − m)     v ← β2·v + (1 − β2)·g²     θ ← θ − step_size · m / (√v + eps_hat)
 * with eps_hat = eps·√(1 − β2^t) and step_size = lr·√(1 − β2^t)/(1 − β1^t) computed by the caller. */
#define ADAM_LOOP(T, SQRT)                                                                          \
    {                                                                                               \
        T *th = (T *)v[0].buf, *mm = (T *)v[2].buf, *vv = (T *)v[3].buf;                            \
        const T *g = (const T *)v[1].buf;                                                           \
        const T c1 = (T)(1.0 - beta1), b2 = (T)beta2, c2 = (T)(1.0 - beta2), eh = (T)eps_hat;       \
        const T ss = (T)step_size;                                                                  \
        for (Py_ssize_t i = 0; i < n; i++) {                                                        \
            T gi = g[i];                                                                            \
            mm[i] = mm[i] + (gi - mm[i]) * c1;                                                      \
            vv[i] = vv[i] * b2 + (gi * gi) * c2;                                                    \
            th[i] = th[i] - (mm[i] / (SQRT(vv[i]) + eh)) * ss;                                      \
        }                                                                                           \
    }

static PyObject *adam(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {1, 0, 1, 1};
    static const char *const names[] = {"theta", "g", "m", "v"};
    Py_buffer v[4];
    kind_t kind;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "adam takes theta, g, m, v, beta1, beta2, eps_hat, step_size; got %zd", nargs);
        return NULL;
    }
    double beta1 = PyFloat_AsDouble(args[4]), beta2 = PyFloat_AsDouble(args[5]);
    double eps_hat = PyFloat_AsDouble(args[6]), step_size = PyFloat_AsDouble(args[7]);
    if (PyErr_Occurred()) return NULL;
    if (!get_all(args, 4, 4, writable, names, v, &kind, 1, "adam")) return NULL;
    Py_ssize_t n = count(&v[0]);
    if (kind == F32) ADAM_LOOP(float, sqrtf) else ADAM_LOOP(double, sqrt)
    release(v, 4);
    Py_RETURN_NONE;
}

/* first_nonfinite(a) -> int: the flat (C-order) index of the first NaN or ±inf in a, or -1 when every number is
 * finite. A number is not finite when its exponent bits are all ones. The test runs on the bits, a block at a time
 * so that it vectorises (a double's exponent lies in its upper 32 bits, compared as a 32-bit word), and stops at
 * the first block that holds such a number. The GIL is released: callers may check parts of an array in threads. */
#define SAME(u) (u)
#define HIGH32(u) ((uint32_t)((u) >> 32))
#define FIRST_NONFINITE_LOOP(U, HIGH, EXPONENT)                                              \
    {                                                                                        \
        const U *x = (const U *)v.buf;                                                       \
        for (Py_ssize_t lo = 0; lo < n && found < 0; lo += 4096) {                           \
            Py_ssize_t hi = n - lo < 4096 ? n : lo + 4096;                                   \
            int any = 0;                                                                     \
            for (Py_ssize_t i = lo; i < hi; i++) any |= (HIGH(x[i]) & EXPONENT) == EXPONENT; \
            if (any)                                                                         \
                for (Py_ssize_t i = lo; i < hi; i++)                                         \
                    if ((HIGH(x[i]) & EXPONENT) == EXPONENT) {                               \
                        found = i;                                                           \
                        break;                                                               \
                    }                                                                        \
        }                                                                                    \
    }

static PyObject *first_nonfinite(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer v;
    kind_t kind;
    Py_ssize_t found = -1;
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "first_nonfinite takes 1 array, got %zd", nargs);
        return NULL;
    }
    if (!get_buffer(args[0], &v, 0, &kind, "a")) return NULL;
    Py_ssize_t n = count(&v);
    Py_BEGIN_ALLOW_THREADS
    if (kind == F32) FIRST_NONFINITE_LOOP(uint32_t, SAME, 0x7f800000u)
    else FIRST_NONFINITE_LOOP(uint64_t, HIGH32, 0x7ff00000u)
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&v);
    return PyLong_FromSsize_t(found);
}

/* BLAS calls without ctypes. deltaprop.blas finds cblas_sgemm/dgemm/saxpy/daxpy (64-bit integer interface) in the
 * OpenBLAS that NumPy loaded and hands their addresses to set_blas once; gemm and axpy below then take the arrays
 * themselves. Through ctypes each call costs about 8 µs of argument conversion, several times a training step. */
typedef void (*sgemm_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *,
                         int64_t, float, float *, int64_t);
typedef void (*dgemm_fn)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                         const double *, int64_t, double, double *, int64_t);
typedef void (*saxpy_fn)(int64_t, float, const float *, int64_t, float *, int64_t);
typedef void (*daxpy_fn)(int64_t, double, const double *, int64_t, double *, int64_t);
static sgemm_fn sgemm_ptr;
static dgemm_fn dgemm_ptr;
static saxpy_fn saxpy_ptr;
static daxpy_fn daxpy_ptr;
#include "_team.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static PyObject *set_blas(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    void *p[4];
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "set_blas takes 4 addresses, got %zd", nargs);
        return NULL;
    }
    for (int i = 0; i < 4; i++) {
        p[i] = PyLong_AsVoidPtr(args[i]);
        if (p[i] == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "set_blas: an address is 0");
            return NULL;
        }
    }
    sgemm_ptr = (sgemm_fn)p[0];
    dgemm_ptr = (dgemm_fn)p[1];
    saxpy_ptr = (saxpy_fn)p[2];
    daxpy_ptr = (daxpy_fn)p[3];
    Py_RETURN_NONE;
}

/* team_available() -> bool: whether sgd_step can share a step among threads (see _team.h) */
static PyObject *team_available(PyObject *self, PyObject *unused) {
#ifdef TEAM_THREADS
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

/* A float32/float64 buffer with strides, or 0 (and no exception) when obj is not one: the caller falls back. */
static int get_strided(PyObject *obj, Py_buffer *view, int writable, kind_t *kind) {
    if (PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_STRIDES | (writable ? PyBUF_WRITABLE : 0)) != 0) {
        PyErr_Clear();
        return 0;
    }
    if (!float_kind(view, kind)) {
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

/* (transpose flag, leading dimension) of a 2-D buffer that is a row-major matrix or the transpose of one */
static int operand(const Py_buffer *v, int *trans, int64_t *ld) {
    if (v->ndim != 2) return 0;
    Py_ssize_t rows = v->shape[0], cols = v->shape[1], s0 = v->strides[0], s1 = v->strides[1], size = v->itemsize;
    if (s1 == size && s0 >= size * (cols > 1 ? cols : 1) && s0 % size == 0) {
        *trans = NO_TRANS;
        *ld = s0 / size;
        return 1;
    }
    if (s0 == size && s1 >= size * (rows > 1 ? rows : 1) && s1 % size == 0) {
        *trans = TRANS;
        *ld = s1 / size;
        return 1;
    }
    return 0;
}

/* gemm(A, B, C, alpha, beta) -> bool: C ← alpha·A·B + beta·C through BLAS. False (nothing done) when the arrays do
 * not suit BLAS (dtypes, layouts, empty) or set_blas was not called: the caller computes another way. */
static PyObject *gemm(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer v[3];
    kind_t k[3];
    int t[3], got = 0, done = 0;
    int64_t ld[3];
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "gemm takes A, B, C, alpha, beta; got %zd arguments", nargs);
        return NULL;
    }
    double alpha = PyFloat_AsDouble(args[3]), beta = PyFloat_AsDouble(args[4]);
    if (PyErr_Occurred()) return NULL;
    for (; got < 3; got++)
        if (!get_strided(args[got], &v[got], got == 2, &k[got]) || !operand(&v[got], &t[got], &ld[got])) break;
    if (got == 3 && k[1] == k[0] && k[2] == k[0] && t[2] == NO_TRANS) {
        int64_t m = v[0].shape[0], kk = v[0].shape[1], n = v[1].shape[1];
        if (v[1].shape[0] != kk || v[2].shape[0] != m || v[2].shape[1] != n) {
            release(v, 3);
            PyErr_SetString(PyExc_ValueError, "gemm: the shapes of A, B and C do not match");
            return NULL;
        }
        if (m && n && kk && (k[0] == F32 ? sgemm_ptr != NULL : dgemm_ptr != NULL)) {
            Py_BEGIN_ALLOW_THREADS
            if (k[0] == F32)
                sgemm_ptr(ROW_MAJOR, t[0], t[1], m, n, kk, (float)alpha, v[0].buf, ld[0], v[1].buf, ld[1],
                          (float)beta, v[2].buf, ld[2]);
            else
                dgemm_ptr(ROW_MAJOR, t[0], t[1], m, n, kk, alpha, v[0].buf, ld[0], v[1].buf, ld[1], beta,
                          v[2].buf, ld[2]);
            Py_END_ALLOW_THREADS
            done = 1;
        }
    }
    release(v, got < 3 ? got : 3);
    return PyBool_FromLong(done);
}

static int contiguous_1d(const Py_buffer *v) { return v->ndim == 1 && v->strides[0] == v->itemsize; }

/* axpy(a, x, y) -> bool: y ← a·x + y through BLAS for 1-D C-contiguous arrays of one dtype and length; False
 * (nothing done) otherwise. */
static PyObject *axpy(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer v[2];
    kind_t k[2];
    int got = 0, done = 0;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "axpy takes a, x, y; got %zd arguments", nargs);
        return NULL;
    }
    double a = PyFloat_AsDouble(args[0]);
    if (PyErr_Occurred()) return NULL;
    for (; got < 2; got++)
        if (!get_strided(args[1 + got], &v[got], got == 1, &k[got])) break;
    if (got == 2 && k[1] == k[0] && contiguous_1d(&v[0]) && contiguous_1d(&v[1]) && v[0].shape[0] == v[1].shape[0] &&
        v[0].shape[0] > 0 && (k[0] == F32 ? saxpy_ptr != NULL : daxpy_ptr != NULL)) {
        int64_t n = v[0].shape[0];
        Py_BEGIN_ALLOW_THREADS
        if (k[0] == F32)
            saxpy_ptr(n, (float)a, v[0].buf, 1, v[1].buf, 1);
        else
            daxpy_ptr(n, a, v[0].buf, 1, v[1].buf, 1);
        Py_END_ALLOW_THREADS
        done = 1;
    }
    release(v, got);
    return PyBool_FromLong(done);
}

/* The training step (_sgd_step.h), for the networks deltaprop.compiled_step hands to it. */
enum {
    ACT_IDENTITY = 0,
    ACT_RELU = 1,
    ACT_SIGMOID = 2,
    ACT_TANH = 3,
    ACT_LEAKY_RELU = 4,
    ACT_ELU = 5,
    ACT_SOFTPLUS = 6
};
enum { LOSS_SOFTMAX_CE = 0, LOSS_SIGMOID_BCE = 1, LOSS_SQUARED_ERROR = 2, LOSS_MSE = 3 };
#define MAX_LAYERS 64
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif
/* WIDE: the elementwise loops of the step compiled three times (AVX-512, AVX2, the baseline x86-64 this file is built
 * for), the widest the CPU has chosen when the module loads (GCC's function multiversioning, Linux). The same
 * operations in the same order: the results are identical. Per L fit ~1 % faster (three alternating A/Bs). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && !defined(NO_WIDE)
#define WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WIDE
#endif

struct sgd_step {
    const void *X;          /* the inputs (n_X × sizes[0]); the batch itself when rows is NULL */
    const int64_t *rows;    /* this batch's rows of X, or NULL */
    const void *T;          /* the batch's targets (m × sizes[L]) */
    const int64_t *labels;  /* the batch's class indices (m), or NULL */
    const double *weights;  /* the batch's sample weights (m), or NULL */
    void *theta, *buffer;   /* the parameters and the momentum (or gradient) buffer, n_params each */
    void *scratch;          /* (m·sizes[0] with rows) + widest + 2·m·Σ sizes[1..L] numbers */
    Py_ssize_t m, n_layers, widest, n_params, sizes[MAX_LAYERS + 1];
    int activations[MAX_LAYERS]; /* ACT_* of every layer (the output's is used with squared error and mse) */
    double alphas[MAX_LAYERS];   /* each layer's α (LeakyReLU's slope, ELU's scale; unused by the others) */
    int loss;                    /* LOSS_*: the output layer's activation and loss */
    double lr, beta;
    int update; /* θ ← θ − lr·buffer after the backward pass, or not (the caller's optimiser updates) */
    int check_inputs; /* refuse a batch whose inputs are not all finite (correct = −2, nothing written) */
    double total_weight; /* Σ of the sample weights */
    /* what the step found: E of the batch, its correct predictions, whether check_inputs refused it */
    double E;
    int64_t correct;
    int refused;
    struct step_part { /* each thread's part of them (a cache line each) */
        double sum;
        int64_t correct;
        int refused;
        char pad[64 - sizeof(double) - sizeof(int64_t) - sizeof(int)];
    } parts[MAX_TEAM];
};

#define REAL float
#define SUFFIX f32
#define GEMM sgemm_ptr
#define AXPY saxpy_ptr
#define EXP expf
#define LOG logf
#define TANH tanhf
#define LOG1P log1pf
#define FABS fabsf
#define EXPM1 expm1f
#define LN_FLOOR FLT_MIN       /* max(1e-300, the smallest normal float): 1e-300 would round to 0 */
#define BCE_MARGIN FLT_EPSILON /* max(1e-15, float's epsilon): 1 − 1e-15 would round to 1 */
#include "_sgd_step.h"
#undef REAL
#undef SUFFIX
#undef GEMM
#undef AXPY
#undef EXP
#undef LOG
#undef TANH
#undef LOG1P
#undef FABS
#undef EXPM1
#undef LN_FLOOR
#undef BCE_MARGIN
#define REAL double
#define SUFFIX f64
#define GEMM dgemm_ptr
#define AXPY daxpy_ptr
#define EXP exp
#define LOG log
#define TANH tanh
#define LOG1P log1p
#define FABS fabs
#define EXPM1 expm1
#define LN_FLOOR 1e-300
#define BCE_MARGIN 1e-15
#include "_sgd_step.h"

/* the step of either float type as a team's work */
static void step_work_f32(void *s, int t, int T) { sgd_step_f32(s, t, T); }
static void step_work_f64(void *s, int t, int T) { sgd_step_f64(s, t, T); }

/* The elementwise kernels of deltaprop.native, computed by the step's own functions (_sgd_step.h). */

/* relu(net, out): out = max(net, 0); NaN stays NaN, as with np.maximum. out may be net. */
static PyObject *relu(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {0, 1};
    static const char *const names[] = {"net", "out"};
    Py_buffer v[2];
    kind_t kind;
    if (!get_all(args, nargs, 2, writable, names, v, &kind, 1, "relu")) return NULL;
    if (kind == F32)
        activate_f32(ACT_RELU, 0, v[0].buf, v[1].buf, count(&v[0]));
    else
        activate_f64(ACT_RELU, 0, v[0].buf, v[1].buf, count(&v[0]));
    release(v, 2);
    Py_RETURN_NONE;
}

/* relu_backward(g, out): g ← g ⊙ [out > 0], the ReLU's δ = ∂E/∂out ⊙ f′(net) in place (as g *= out > 0). */
static PyObject *relu_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {1, 0};
    static const char *const names[] = {"g", "out"};
    Py_buffer v[2];
    kind_t kind;
    if (!get_all(args, nargs, 2, writable, names, v, &kind, 1, "relu_backward")) return NULL;
    if (kind == F32)
        activation_backward_f32(ACT_RELU, 0, v[0].buf, v[1].buf, count(&v[0]));
    else
        activation_backward_f64(ACT_RELU, 0, v[0].buf, v[1].buf, count(&v[0]));
    release(v, 2);
    Py_RETURN_NONE;
}

/* softmax(net, out, m, s): per row, m = max_j net_j, s = Σ_j e^(net_j − m), out = e^(net − m) / s.
 * m and s hold one number per row; out may be net. */
static PyObject *softmax(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {0, 1, 1, 1};
    static const char *const names[] = {"net", "out", "m", "s"};
    Py_buffer v[4];
    kind_t kind;
    Py_ssize_t rows, cols;
    if (!get_all(args, nargs, 4, writable, names, v, &kind, 0, "softmax")) return NULL;
    if (!shape2(&v[0], &rows, &cols, "net")) goto fail;
    if (count(&v[1]) != rows * cols || count(&v[2]) != rows || count(&v[3]) != rows || cols < 1) {
        PyErr_SetString(PyExc_ValueError, "softmax: out must match net, m and s must hold one number per row");
        goto fail;
    }
    if (kind == F32)
        softmax_rows_f32(v[0].buf, v[1].buf, v[2].buf, v[3].buf, rows, cols);
    else
        softmax_rows_f64(v[0].buf, v[1].buf, v[2].buf, v[3].buf, rows, cols);
    release(v, 4);
    Py_RETURN_NONE;
fail:
    release(v, 4);
    return NULL;
}

/* cross_entropy_sum(net, m, s, t): Σ over rows and units of t · ln o, with ln o = (net − m) − ln s (the softmax's
 * own m and s), summed in double. The batch's cross-entropy is minus this over the number of rows. */
static PyObject *cross_entropy_sum(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {0, 0, 0, 0};
    static const char *const names[] = {"net", "m", "s", "t"};
    Py_buffer v[4];
    kind_t kind;
    Py_ssize_t rows, cols;
    double total = 0.0;
    if (!get_all(args, nargs, 4, writable, names, v, &kind, 0, "cross_entropy_sum")) return NULL;
    if (!shape2(&v[0], &rows, &cols, "net")) goto fail;
    if (count(&v[3]) != rows * cols || count(&v[1]) != rows || count(&v[2]) != rows) {
        PyErr_SetString(PyExc_ValueError, "cross_entropy_sum: t must match net, m and s must hold one number per row");
        goto fail;
    }
    if (kind == F32)
        total = cross_entropy_rows_f32(v[0].buf, v[1].buf, v[2].buf, v[3].buf, rows, cols);
    else
        total = cross_entropy_rows_f64(v[0].buf, v[1].buf, v[2].buf, v[3].buf, rows, cols);
    release(v, 4);
    return PyFloat_FromDouble(total);
fail:
    release(v, 4);
    return NULL;
}

/* 1 when a buffer holds 64-bit integers (native byte order) */
static int int64_buffer(const Py_buffer *v) {
    const char *f = v->format ? v->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    return v->itemsize == 8 && (f[0] == 'q' || f[0] == 'l') && f[1] == '\0' && v->ndim == 1;
}

/* a tuple or list of n small non-negative integers into out; 0 with an exception otherwise */
static int int_sequence(PyObject *obj, Py_ssize_t *out, Py_ssize_t max, Py_ssize_t *n, const char *name) {
    PyObject *seq = PySequence_Fast(obj, "");
    if (seq == NULL) {
        PyErr_Format(PyExc_TypeError, "sgd_step: %s must be a sequence of integers", name);
        return 0;
    }
    *n = PySequence_Fast_GET_SIZE(seq);
    int ok = *n <= max;
    for (Py_ssize_t i = 0; ok && i < *n; i++) {
        out[i] = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(seq, i));
        ok = out[i] >= 0 && !PyErr_Occurred();
    }
    Py_DECREF(seq);
    if (!ok) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "sgd_step: %s must hold at most %zd non-negative integers", name, max);
    }
    return ok;
}

/* sgd_step(X, rows, T, labels, theta, buffer, scratch, sizes, activations, loss, lr, beta, update, weights, alphas
 * [, check_inputs[, threads]]) -> (E, correct): one training step (see _sgd_step.h); the update only when update is
 * true. rows, labels and weights (float64 sample weights) may be None; correct is -1 without labels; alphas: one
 * float per layer. With check_inputs true, a batch whose inputs hold a NaN or ±inf gives (nan, -2) and changes
 * nothing. threads (default 1): how many threads share the step (_team.h; fewer where they cannot). */
static PyObject *sgd_step(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const char *const names[] = {"X", "rows", "T", "labels", "theta", "buffer", "scratch"};
    Py_buffer v[7], wv;
    int held[7] = {0}, held_w = 0, ok = 0;
    kind_t kind = F32, k;
    struct sgd_step s;
    Py_ssize_t acts[MAX_LAYERS], n_acts, n_sizes;
    long threads = 1;
    if (nargs < 15 || nargs > 17) {
        PyErr_Format(PyExc_TypeError, "sgd_step takes 15 to 17 arguments, got %zd", nargs);
        return NULL;
    }
    memset(&s, 0, sizeof s);
    if (!int_sequence(args[7], s.sizes, MAX_LAYERS + 1, &n_sizes, "sizes")) return NULL;
    if (!int_sequence(args[8], acts, MAX_LAYERS, &n_acts, "activations")) return NULL;
    long loss = PyLong_AsLong(args[9]);
    s.lr = PyFloat_AsDouble(args[10]);
    s.beta = PyFloat_AsDouble(args[11]);
    if (PyErr_Occurred()) return NULL;
    if ((s.update = PyObject_IsTrue(args[12])) < 0) return NULL;
    if (nargs >= 16 && (s.check_inputs = PyObject_IsTrue(args[15])) < 0) return NULL;
    if (nargs == 17 && (threads = PyLong_AsLong(args[16])) == -1 && PyErr_Occurred()) return NULL;
    if (threads < 1) {
        PyErr_Format(PyExc_ValueError, "sgd_step: threads must be at least 1, got %ld", threads);
        return NULL;
    }
    if (loss < LOSS_SOFTMAX_CE || loss > LOSS_MSE) {
        PyErr_Format(PyExc_ValueError, "sgd_step: unknown loss code %ld", loss);
        return NULL;
    }
    s.loss = (int)loss;
    s.n_layers = n_sizes - 1;
    if (s.n_layers < 1 || n_acts != s.n_layers) {
        PyErr_SetString(PyExc_ValueError, "sgd_step: sizes needs 2 or more layer sizes, activations one per layer");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_sizes; i++) {
        if (s.sizes[i] < 1) {
            PyErr_SetString(PyExc_ValueError, "sgd_step: every layer size must be at least 1");
            return NULL;
        }
        if (i > 0) {
            s.n_params += s.sizes[i - 1] * s.sizes[i] + s.sizes[i];
            if (s.sizes[i] > s.widest) s.widest = s.sizes[i];
        }
    }
    PyObject *alphas = PySequence_Fast(args[14], "sgd_step: alphas must be a sequence of numbers");
    if (alphas == NULL) return NULL;
    int alphas_ok = PySequence_Fast_GET_SIZE(alphas) == n_acts;
    for (Py_ssize_t i = 0; alphas_ok && i < n_acts; i++) {
        s.alphas[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(alphas, i));
        alphas_ok = !PyErr_Occurred();
    }
    Py_DECREF(alphas);
    if (!alphas_ok) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "sgd_step: alphas must hold one number per layer");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_acts; i++) {
        if (acts[i] > ACT_SOFTPLUS) {
            PyErr_Format(PyExc_ValueError, "sgd_step: unknown activation code %zd", acts[i]);
            return NULL;
        }
        s.activations[i] = (int)acts[i];
    }
    for (int i = 0; i < 7; i++) {
        if ((i == 1 || i == 3) && args[i] == Py_None) continue;
        int writable = i >= 4;
        if (i == 1 || i == 3) { /* int64 indices */
            held[i] = PyObject_GetBuffer(args[i], &v[i], PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0;
            if (!held[i] || !int64_buffer(&v[i])) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "sgd_step: %s must be a 1-D C-contiguous int64 array or None", names[i]);
                goto done;
            }
            continue;
        }
        if (!get_buffer(args[i], &v[i], writable, &k, names[i])) goto done;
        held[i] = 1;
        if (i == 0) {
            kind = k;
        } else if (k != kind) {
            PyErr_Format(PyExc_TypeError, "sgd_step: %s must have the dtype of X", names[i]);
            goto done;
        }
    }
    if (v[0].ndim != 2 || v[0].shape[1] != s.sizes[0]) {
        PyErr_Format(PyExc_ValueError, "sgd_step: X must be 2-D with %zd columns", s.sizes[0]);
        goto done;
    }
    s.m = held[1] ? v[1].shape[0] : v[0].shape[0];
    if (s.m < 1 || count(&v[2]) != s.m * s.sizes[s.n_layers] || (held[3] && v[3].shape[0] != s.m) ||
        count(&v[4]) != s.n_params || count(&v[5]) != s.n_params) {
        PyErr_SetString(PyExc_ValueError, "sgd_step: T must hold one row of targets per example, labels one index "
                                          "per example, theta and buffer every parameter");
        goto done;
    }
    Py_ssize_t needed = (held[1] ? s.m * s.sizes[0] : 0) + s.widest; /* the gathered batch when rows are given */
    for (Py_ssize_t i = 1; i < n_sizes; i++) needed += 2 * s.m * s.sizes[i];
    if (count(&v[6]) < needed) {
        PyErr_Format(PyExc_ValueError, "sgd_step: scratch must hold at least %zd numbers", needed);
        goto done;
    }
    if (args[13] != Py_None) { /* sample weights: float64, one per row */
        held_w = PyObject_GetBuffer(args[13], &wv, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0;
        const char *f = held_w && wv.format ? wv.format : "";
        if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
        if (!held_w || wv.ndim != 1 || wv.itemsize != 8 || f[0] != 'd' || f[1] != '\0' || wv.shape[0] != s.m) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "sgd_step: weights must be None or a 1-D float64 array, one per example");
            goto done;
        }
        s.weights = wv.buf;
        for (Py_ssize_t r = 0; r < s.m; r++) s.total_weight += s.weights[r];
    }
    if (held[1]) {
        const int64_t *rows = v[1].buf;
        for (Py_ssize_t r = 0; r < s.m; r++)
            if (rows[r] < 0 || rows[r] >= v[0].shape[0]) {
                PyErr_Format(PyExc_IndexError, "sgd_step: row %lld is outside X's %zd rows", (long long)rows[r],
                             v[0].shape[0]);
                goto done;
            }
        s.rows = rows;
    }
    if (kind == F32 ? (sgemm_ptr == NULL || saxpy_ptr == NULL) : (dgemm_ptr == NULL || daxpy_ptr == NULL)) {
        PyErr_SetString(PyExc_RuntimeError, "sgd_step: BLAS was not set (set_blas)");
        goto done;
    }
    s.X = v[0].buf;
    s.T = v[2].buf;
    s.labels = held[3] ? v[3].buf : NULL;
    s.theta = v[4].buf;
    s.buffer = v[5].buf;
    s.scratch = v[6].buf;
    if (threads > s.m) threads = (long)s.m; /* every thread takes one row or more of the forward pass */
    Py_BEGIN_ALLOW_THREADS
    team_run(kind == F32 ? step_work_f32 : step_work_f64, &s, (int)threads);
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    for (int i = 0; i < 7; i++)
        if (held[i]) PyBuffer_Release(&v[i]);
    if (held_w) PyBuffer_Release(&wv);
    if (!ok) return NULL;
    /* correct: the count, −1 without labels, −2 for a batch refused by check_inputs */
    if (s.refused) return Py_BuildValue("(dL)", (double)NAN, -2LL);
    return Py_BuildValue("(dL)", s.E, (long long)(s.labels != NULL ? s.correct : -1));
}

static PyMethodDef methods[] = {
    {"relu", (PyCFunction)(void (*)(void))relu, METH_FASTCALL, "relu(net, out): out = max(net, 0)."},
    {"relu_backward", (PyCFunction)(void (*)(void))relu_backward, METH_FASTCALL,
     "relu_backward(g, out): g *= out > 0, in place."},
    {"softmax", (PyCFunction)(void (*)(void))softmax, METH_FASTCALL,
     "softmax(net, out, m, s): row-wise softmax of net into out; m = row max, s = row sum of exp(net - m)."},
    {"cross_entropy_sum", (PyCFunction)(void (*)(void))cross_entropy_sum, METH_FASTCALL,
     "cross_entropy_sum(net, m, s, t) -> float: sum of t * log-softmax(net), from the softmax's m and s."},
    {"adam", (PyCFunction)(void (*)(void))adam, METH_FASTCALL,
     "adam(theta, g, m, v, beta1, beta2, eps_hat, step_size): one Adam update of theta, m and v in place."},
    {"first_nonfinite", (PyCFunction)(void (*)(void))first_nonfinite, METH_FASTCALL,
     "first_nonfinite(a) -> int: flat index of the first NaN or infinity in a, or -1."},
    {"set_blas", (PyCFunction)(void (*)(void))set_blas, METH_FASTCALL,
     "set_blas(sgemm, dgemm, saxpy, daxpy): addresses of the CBLAS functions (64-bit integers) gemm and axpy call."},
    {"team_available", team_available, METH_NOARGS,
     "team_available() -> bool: whether sgd_step can share a step among threads."},
    {"gemm", (PyCFunction)(void (*)(void))gemm, METH_FASTCALL,
     "gemm(A, B, C, alpha, beta) -> bool: C = alpha*A@B + beta*C through BLAS; False if the arrays do not suit it."},
    {"axpy", (PyCFunction)(void (*)(void))axpy, METH_FASTCALL,
     "axpy(a, x, y) -> bool: y += a*x through BLAS; False if the arrays do not suit it."},
    {"sgd_step", (PyCFunction)(void (*)(void))sgd_step, METH_FASTCALL,
     "sgd_step(X, rows, T, labels, theta, buffer, scratch, sizes, activations, loss, lr, beta, update, weights, "
     "alphas[, check_inputs[, threads]]) -> "
     "(E, correct): forward and backward pass of an MLP, the gradient into buffer (buffer = beta*buffer + "
     "gradient), then theta -= lr*buffer if update; (nan, -2) for inputs that are not finite under check_inputs; "
     "threads share the step."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ckernels",
                                    "Compiled elementwise kernels of deltaprop's training step (optional).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&module); }
