/* One SGD step of an MLP in one call: gather the batch, forward pass, softmax cross-entropy, backward pass with each
 * layer's gradient added into the momentum buffer inside its weight-gradient product, and the update.
 *
 * _ckernels.c includes this file twice, once per float type, with these defined:
 *     REAL    float or double          SUFFIX  f32 or f64 (names the functions)
 *     GEMM    the CBLAS ?gemm pointer  AXPY    the CBLAS ?axpy pointer
 *     EXP, LOG, TANH                   the libm functions of REAL
 * and with struct sgd_step (the arrays and sizes, checked by the caller) and the ACT_* codes.
 *
 * The maths is deltaprop.fused's (PyTorch's SGD with momentum μ, the gradient of the batch-mean loss):
 *     forward       net_i = out_{i-1}·W_i + b_i,   out_i = f_i(net_i),   o = softmax(net_L)
 *     error         E = −(1/m) Σ t·ln o
 *     output δ      δ_L = (o − t)/m                                  (softmax with cross-entropy)
 *     backward      b_W ← β·b_W + out_{i-1}ᵀ·δ_i,   b_b ← β·b_b + Σ_rows δ_i
 *                   δ_{i-1} = (δ_i·W_iᵀ) ⊙ f′_{i-1}                 (the weights before the update)
 *     update        θ ← θ − lr·b                 (when asked for; skipped when E is not finite)
 * where b is the momentum buffer (β = μ, 0 on the first step) or the gradient (β = 0: no momentum, or the caller's
 * optimiser makes the update).
 */
#define CAT_(name, suffix) name##_##suffix
#define CAT(name, suffix) CAT_(name, suffix)

/* out = f(net) over n numbers (out may be net): the same operations as deltaprop.activations' forward_into.
 * Not inlined: GCC turns an in-place `z[j] = z[j] < 0 ? 0 : z[j]` into a scalar conditional store; through two
 * pointers that may differ, the loop vectorises. */
static NOINLINE void CAT(activate, SUFFIX)(int f, const REAL *net, REAL *out, Py_ssize_t n) {
    if (f == ACT_RELU) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = net[j] < 0 ? 0 : net[j]; /* NaN stays NaN, as with np.maximum */
    } else if (f == ACT_SIGMOID) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (TANH(net[j] * (REAL)0.5) + 1) * (REAL)0.5; /* ½(1 + tanh(net/2)) */
    } else if (f == ACT_TANH) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = TANH(net[j]);
    } else if (out != net) {
        memcpy(out, net, n * sizeof(REAL));
    }
}

/* δ = ∂E/∂out ⊙ f′(net), in place, from the layer's output o */
static void CAT(activation_backward, SUFFIX)(int f, REAL *g, const REAL *o, Py_ssize_t n) {
    if (f == ACT_RELU) {
        for (Py_ssize_t j = 0; j < n; j++) {
            REAL keep = o[j] > 0 ? (REAL)1 : (REAL)0; /* f′ = 1 where the unit is active; a select, so it vectorises */
            g[j] = g[j] * keep;
        }
    } else if (f == ACT_SIGMOID) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = (g[j] * o[j]) * (1 - o[j]); /* f′ = o(1 − o) */
    } else if (f == ACT_TANH) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = g[j] * (1 - o[j] * o[j]); /* f′ = 1 − o² */
    }
}

/* Softmax of each row of net (m × k) with cross-entropy against t: δ = (o − t)/m, the number of rows whose largest
 * output is at their label (when labels is not NULL), and Σ t·ln o summed in double (ln o = (net − max) − ln Σ). */
static double CAT(softmax_cross_entropy, SUFFIX)(const REAL *net, const REAL *t, const int64_t *labels, REAL *delta,
                                                 Py_ssize_t m, Py_ssize_t k, int64_t *correct) {
    double sum_t_ln_o = 0.0;
    for (Py_ssize_t r = 0; r < m; r++) {
        const REAL *z = net + r * k, *tr = t + r * k;
        REAL *d = delta + r * k;
        REAL max = z[0];
        Py_ssize_t argmax = 0;
        for (Py_ssize_t j = 1; j < k && max == max; j++) /* the first largest, or the first NaN, as np.argmax */
            if (z[j] > max || z[j] != z[j]) {
                max = z[j];
                argmax = j;
            }
        if (labels != NULL && argmax == labels[r]) (*correct)++;
        REAL sum = 0;
        for (Py_ssize_t j = 0; j < k; j++) {
            d[j] = EXP(z[j] - max);
            sum += d[j];
        }
        REAL ln_sum = LOG(sum);
        for (Py_ssize_t j = 0; j < k; j++) {
            if (tr[j] != 0) sum_t_ln_o += (double)(tr[j] * ((z[j] - max) - ln_sum));
            d[j] = (d[j] / sum - tr[j]) / (REAL)m; /* δ_L = (o − t)/m */
        }
    }
    return sum_t_ln_o;
}

/* The step. Returns Σ t·ln o over the batch (E = −that/m) and adds to *correct. */
static double CAT(sgd_step, SUFFIX)(const struct sgd_step *s, int64_t *correct) {
    const Py_ssize_t m = s->m, L = s->n_layers, *n = s->sizes;
    REAL *W[MAX_LAYERS], *b[MAX_LAYERS], *bW[MAX_LAYERS], *bb[MAX_LAYERS]; /* θ's and the buffer's views */
    REAL *out[MAX_LAYERS], *delta[MAX_LAYERS];                              /* per layer, m rows each */
    REAL *theta = s->theta, *buffer = s->buffer, *scratch = s->scratch;
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < L; i++) { /* the layout of deltaprop.network.layer_views: W row-major, then b */
        W[i] = theta + at;
        bW[i] = buffer + at;
        at += n[i] * n[i + 1];
        b[i] = theta + at;
        bb[i] = buffer + at;
        at += n[i + 1];
    }
    REAL *x = scratch, *db = scratch + m * n[0]; /* the gathered batch; Σ_rows δ of one layer */
    REAL *next = db + s->widest;
    for (Py_ssize_t i = 0; i < L; i++) {
        out[i] = next;
        delta[i] = next + m * n[i + 1];
        next += 2 * m * n[i + 1];
    }

    const REAL *X = s->X;
    if (s->rows != NULL) { /* this batch's rows, in this epoch's order */
        for (Py_ssize_t r = 0; r < m; r++) memcpy(x + r * n[0], X + s->rows[r] * n[0], n[0] * sizeof(REAL));
    } else {
        x = (REAL *)X;
    }

    const REAL *below = x; /* forward: net_i = out_{i-1}·W_i + b_i, the bias put in first and added by the product */
    for (Py_ssize_t i = 0; i < L; i++) {
        for (Py_ssize_t r = 0; r < m; r++) memcpy(out[i] + r * n[i + 1], b[i], n[i + 1] * sizeof(REAL));
        GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n[i + 1], n[i], 1, below, n[i], W[i], n[i + 1], 1, out[i], n[i + 1]);
        if (i < L - 1) CAT(activate, SUFFIX)(s->activations[i], out[i], out[i], m * n[i + 1]); /* in place */
        below = out[i];
    }
    double sum_t_ln_o =
        CAT(softmax_cross_entropy, SUFFIX)(out[L - 1], s->T, s->labels, delta[L - 1], m, n[L], correct);

    REAL beta = (REAL)s->beta;
    for (Py_ssize_t i = L - 1; i >= 0; i--) { /* backward, from the output layer down */
        below = i ? out[i - 1] : x;
        /* b_W ← β·b_W + out_{i-1}ᵀ·δ_i */
        GEMM(ROW_MAJOR, TRANS, NO_TRANS, n[i], n[i + 1], m, 1, below, n[i], delta[i], n[i + 1], beta, bW[i], n[i + 1]);
        /* b_b ← β·b_b + Σ_rows δ_i, the rows summed in order as np.add.reduce(δ, axis=0) does */
        REAL *sum = beta == 0 ? bb[i] : db;
        memcpy(sum, delta[i], n[i + 1] * sizeof(REAL));
        for (Py_ssize_t r = 1; r < m; r++)
            for (Py_ssize_t j = 0; j < n[i + 1]; j++) sum[j] += delta[i][r * n[i + 1] + j];
        if (beta != 0)
            for (Py_ssize_t j = 0; j < n[i + 1]; j++) bb[i][j] = bb[i][j] * beta + db[j];
        if (i > 0) { /* δ_{i-1} = (δ_i·W_iᵀ) ⊙ f′_{i-1} */
            GEMM(ROW_MAJOR, NO_TRANS, TRANS, m, n[i], n[i + 1], 1, delta[i], n[i + 1], W[i], n[i + 1], 0, delta[i - 1],
                 n[i]);
            CAT(activation_backward, SUFFIX)(s->activations[i - 1], delta[i - 1], out[i - 1], m * n[i]);
        }
    }
    if (s->update && isfinite(sum_t_ln_o)) AXPY(s->n_params, -(REAL)s->lr, buffer, 1, theta, 1); /* θ ← θ − lr·b */
    return sum_t_ln_o;
}

#undef CAT
#undef CAT_
