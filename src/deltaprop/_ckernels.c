/* The elementwise work of a training step, compiled: ReLU forward and backward, softmax, cross-entropy.
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
#include <math.h>
#include <string.h>

typedef enum { F32, F64 } kind_t;

/* A C-contiguous float32/float64 buffer of `obj`; writable if asked. Returns 0 and sets an exception on failure. */
static int get_buffer(PyObject *obj, Py_buffer *view, int writable, kind_t *kind, const char *name) {
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous%s float32 or float64 array", name,
                     writable ? ", writable" : "");
        return 0;
    }
    const char *f = view->format ? view->format : "B";
    if (f[0] == '<' || f[0] == '=' || f[0] == '@') f++;
    if (f[0] == 'f' && f[1] == '\0' && view->itemsize == 4) {
        *kind = F32;
    } else if (f[0] == 'd' && f[1] == '\0' && view->itemsize == 8) {
        *kind = F64;
    } else {
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

/* relu(net, out): out = max(net, 0); NaN stays NaN, as with np.maximum. out may be net. */
#define RELU_LOOP(T)                                              \
    {                                                             \
        const T *x = (const T *)v[0].buf;                         \
        T *o = (T *)v[1].buf;                                     \
        for (Py_ssize_t i = 0; i < n; i++) o[i] = x[i] < 0 ? 0 : x[i]; \
    }

static PyObject *relu(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {0, 1};
    static const char *const names[] = {"net", "out"};
    Py_buffer v[2];
    kind_t kind;
    if (!get_all(args, nargs, 2, writable, names, v, &kind, 1, "relu")) return NULL;
    Py_ssize_t n = count(&v[0]);
    if (kind == F32) RELU_LOOP(float) else RELU_LOOP(double)
    release(v, 2);
    Py_RETURN_NONE;
}

/* relu_backward(g, out): g ← g ⊙ [out > 0], the ReLU's δ = ∂E/∂out ⊙ f′(net) in place (as g *= out > 0). */
#define RELU_BACK_LOOP(T)                                                  \
    {                                                                      \
        T *g = (T *)v[0].buf;                                              \
        const T *o = (const T *)v[1].buf;                                  \
        for (Py_ssize_t i = 0; i < n; i++) {                               \
            T keep = o[i] > 0 ? (T)1 : (T)0; /* a select, so that it vectorises */ \
            g[i] = g[i] * keep;                                            \
        }                                                                  \
    }

static PyObject *relu_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const int writable[] = {1, 0};
    static const char *const names[] = {"g", "out"};
    Py_buffer v[2];
    kind_t kind;
    if (!get_all(args, nargs, 2, writable, names, v, &kind, 1, "relu_backward")) return NULL;
    Py_ssize_t n = count(&v[0]);
    if (kind == F32) RELU_BACK_LOOP(float) else RELU_BACK_LOOP(double)
    release(v, 2);
    Py_RETURN_NONE;
}

/* softmax(net, out, m, s): per row, m = max_j net_j, s = Σ_j e^(net_j − m), out = e^(net − m) / s.
 * m and s hold one number per row; out may be net. */
#define SOFTMAX_LOOP(T, EXP)                                           \
    {                                                                  \
        const T *x = (const T *)v[0].buf;                              \
        T *o = (T *)v[1].buf, *M = (T *)v[2].buf, *S = (T *)v[3].buf;  \
        for (Py_ssize_t r = 0; r < rows; r++) {                        \
            const T *xr = x + r * cols;                                \
            T *orow = o + r * cols;                                    \
            T mx = xr[0];                                              \
            for (Py_ssize_t j = 1; j < cols; j++)                      \
                if (xr[j] > mx || xr[j] != xr[j]) mx = xr[j];          \
            T sum = 0;                                                 \
            for (Py_ssize_t j = 0; j < cols; j++) {                    \
                orow[j] = EXP(xr[j] - mx);                             \
                sum += orow[j];                                        \
            }                                                          \
            for (Py_ssize_t j = 0; j < cols; j++) orow[j] /= sum;      \
            M[r] = mx;                                                 \
            S[r] = sum;                                                \
        }                                                              \
    }

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
    if (kind == F32) SOFTMAX_LOOP(float, expf) else SOFTMAX_LOOP(double, exp)
    release(v, 4);
    Py_RETURN_NONE;
fail:
    release(v, 4);
    return NULL;
}

/* cross_entropy_sum(net, m, s, t): Σ over rows and units of t · ln o, with ln o = (net − m) − ln s (the softmax's
 * own m and s), summed in double. The batch's cross-entropy is minus this over the number of rows. */
#define XENT_LOOP(T, LOG)                                                        \
    {                                                                            \
        const T *x = (const T *)v[0].buf, *M = (const T *)v[1].buf;              \
        const T *S = (const T *)v[2].buf, *tt = (const T *)v[3].buf;             \
        for (Py_ssize_t r = 0; r < rows; r++) {                                  \
            T shift = M[r], lns = LOG(S[r]);                                     \
            const T *xr = x + r * cols, *tr = tt + r * cols;                     \
            for (Py_ssize_t j = 0; j < cols; j++)                                \
                if (tr[j] != 0) total += (double)(tr[j] * ((xr[j] - shift) - lns)); \
        }                                                                        \
    }

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
    if (kind == F32) XENT_LOOP(float, logf) else XENT_LOOP(double, log)
    release(v, 4);
    return PyFloat_FromDouble(total);
fail:
    release(v, 4);
    return NULL;
}

static PyMethodDef methods[] = {
    {"relu", (PyCFunction)(void (*)(void))relu, METH_FASTCALL, "relu(net, out): out = max(net, 0)."},
    {"relu_backward", (PyCFunction)(void (*)(void))relu_backward, METH_FASTCALL,
     "relu_backward(g, out): g *= out > 0, in place."},
    {"softmax", (PyCFunction)(void (*)(void))softmax, METH_FASTCALL,
     "softmax(net, out, m, s): row-wise softmax of net into out; m = row max, s = row sum of exp(net - m)."},
    {"cross_entropy_sum", (PyCFunction)(void (*)(void))cross_entropy_sum, METH_FASTCALL,
     "cross_entropy_sum(net, m, s, t) -> float: sum of t * log-softmax(net), from the softmax's m and s."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ckernels",
                                    "Compiled elementwise kernels of deltaprop's training step (optional).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__ckernels(void) { return PyModule_Create(&module); }
