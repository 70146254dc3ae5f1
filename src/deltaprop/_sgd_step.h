/* One training step of an MLP in one call: gather the batch, forward pass, the loss and δ of the output layer (with
 * sample weights if given), backward pass with each layer's gradient added into a buffer (the gradient, or SGD's
 * momentum buffer) inside its weight-gradient product, and for SGD the update.
 *
 * _ckernels.c includes this file twice, once per float type, with these defined:
 *     REAL    float or double          SUFFIX  f32 or f64 (names the functions)
 *     GEMM    the CBLAS ?gemm pointer  AXPY    the CBLAS ?axpy pointer
 *     EXP, EXPM1, LOG, LOG1P, TANH, FABS   the libm functions of REAL
 *     LN_FLOOR, BCE_MARGIN             deltaprop.losses' clipping bounds for REAL
 * and with struct sgd_step (the arrays and sizes, checked by the caller) and the ACT_* and LOSS_* codes.
 *
 * The maths is deltaprop.fused's (PyTorch's SGD with momentum μ, the gradient of the batch-mean loss):
 *     forward       net_i = out_{i-1}·W_i + b_i,   out_i = f_i(net_i)
 *     error         E and δ_L = ∂E/∂net_L for softmax + cross-entropy, sigmoid + binary cross-entropy (both
 *                   δ_L = (o − t)/m), or squared error / mse on any of the activations (output_layer below)
 *     backward      b_W ← β·b_W + out_{i-1}ᵀ·δ_i,   b_b ← β·b_b + Σ_rows δ_i
 *                   δ_{i-1} = (δ_i·W_iᵀ) ⊙ f′_{i-1}                 (the weights before the update)
 *     update        θ ← θ − lr·b                 (when asked for; skipped when E is not finite)
 * where b is the momentum buffer (β = μ, 0 on the first step) or the gradient (β = 0: no momentum, or the caller's
 * optimiser makes the update).
 *
 * A team of T threads (_team.h) may share the step, each calling single-threaded BLAS on its part; thread t takes
 *     the gather      the batch's rows r0..r1                                                  ── barrier ──
 *     hidden layers   the columns c0..c1 of net_i and out_i (the units c0..c1: W_i's columns)   ── barrier ──
 *     output layer    the rows r0..r1: net_L, o, the loss and δ_L (softmax needs whole rows)    ── barrier ──
 *     backward        per layer, W_i's rows a0..a1 (the layer's inputs a0..a1): those rows of b_W, the entries
 *                     c0..c1 of b_b, the columns a0..a1 of δ_{i-1} (from W_i's rows a0..a1), then the update of
 *                     those rows of W_i (no other thread reads them)                          ── barrier ──
 * so each thread packs only its own part of every W, and the elementwise work is shared too. T = 1 is the same
 * code without barriers, updating θ in one pass at the end, as before. On L's 2-core machine the team was about
 * 6 % faster per fit than BLAS's own two threads on an AVX2 part, 2.5 % on an AVX-512 part (bench/RESULTS.md).
 */
#define CAT_(name, suffix) name##_##suffix
#define CAT(name, suffix) CAT_(name, suffix)

/* out = f(net) over n numbers (out may be net): the same operations as deltaprop.activations' forward_into /
 * forward. α: LeakyReLU's slope, ELU's scale. Not inlined: GCC turns an in-place `z[j] = z[j] < 0 ? 0 : z[j]` into a
 * scalar conditional store; through two pointers that may differ, the loop vectorises. */
static NOINLINE WIDE void CAT(activate, SUFFIX)(int f, REAL alpha, const REAL *net, REAL *out, Py_ssize_t n) {
    if (f == ACT_RELU) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = net[j] < 0 ? 0 : net[j]; /* NaN stays NaN, as with np.maximum */
    } else if (f == ACT_SIGMOID) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (TANH(net[j] * (REAL)0.5) + 1) * (REAL)0.5; /* ½(1 + tanh(net/2)) */
    } else if (f == ACT_TANH) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = TANH(net[j]);
    } else if (f == ACT_LEAKY_RELU) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = net[j] > 0 ? net[j] : alpha * net[j]; /* max(net, α·net) */
    } else if (f == ACT_ELU) {
        for (Py_ssize_t j = 0; j < n; j++) out[j] = net[j] > 0 ? net[j] : alpha * EXPM1(net[j]); /* α(e^net − 1) */
    } else if (f == ACT_SOFTPLUS) { /* ln(1 + e^net) = max(net, 0) + ln(1 + e^−|net|), as np.logaddexp(0, net) */
        for (Py_ssize_t j = 0; j < n; j++) out[j] = (net[j] > 0 ? net[j] : 0) + LOG1P(EXP(-FABS(net[j])));
    } else if (out != net) {
        memcpy(out, net, n * sizeof(REAL));
    }
}

/* δ = ∂E/∂out ⊙ f′(net), in place, from the layer's output o (net > 0 exactly where o > 0 for ReLU, LeakyReLU, ELU;
 * softplus′ = σ(net) = 1 − e^−o) */
static NOINLINE WIDE void CAT(activation_backward, SUFFIX)(int f, REAL alpha, REAL *g, const REAL *o, Py_ssize_t n) {
    if (f == ACT_RELU) {
        for (Py_ssize_t j = 0; j < n; j++) {
            REAL keep = o[j] > 0 ? (REAL)1 : (REAL)0; /* f′ = 1 where the unit is active; a select, so it vectorises */
            g[j] = g[j] * keep;
        }
    } else if (f == ACT_SIGMOID) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = (g[j] * o[j]) * (1 - o[j]); /* f′ = o(1 − o) */
    } else if (f == ACT_TANH) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = g[j] * (1 - o[j] * o[j]); /* f′ = 1 − o² */
    } else if (f == ACT_LEAKY_RELU) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = g[j] * (o[j] > 0 ? (REAL)1 : alpha); /* f′ = 1 or α */
    } else if (f == ACT_ELU) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = g[j] * (o[j] > 0 ? (REAL)1 : o[j] + alpha); /* f′ = 1 or f + α */
    } else if (f == ACT_SOFTPLUS) {
        for (Py_ssize_t j = 0; j < n; j++) g[j] = g[j] * -EXPM1(-o[j]); /* f′ = σ(net) = 1 − e^−f */
    }
}

/* One row of a softmax: e_j = e^(z_j − max) (e may be z); returns Σ_j e_j and sets *max (the first NaN if any). */
static REAL CAT(softmax_row, SUFFIX)(const REAL *z, REAL *e, Py_ssize_t k, REAL *max) {
    REAL mx = z[0], total = 0;
    for (Py_ssize_t j = 1; j < k; j++)
        if (z[j] > mx || z[j] != z[j]) mx = z[j];
    for (Py_ssize_t j = 0; j < k; j++) {
        e[j] = EXP(z[j] - mx);
        total += e[j];
    }
    *max = mx;
    return total;
}

/* *acc += Σ_j t_j·ln o_j over one row, in double, with ln o = (net − max) − ln Σ (the terms with t = 0 left out) */
static void CAT(add_t_ln_o, SUFFIX)(const REAL *z, const REAL *t, REAL max, REAL ln_total, Py_ssize_t k,
                                    double *acc) {
    for (Py_ssize_t j = 0; j < k; j++)
        if (t[j] != 0) *acc += (double)(t[j] * ((z[j] - max) - ln_total));
}

/* deltaprop.native's softmax: o = e^(net − m)/s per row of net (rows × k; o may be net), with m and s per row */
static void CAT(softmax_rows, SUFFIX)(const REAL *net, REAL *o, REAL *M, REAL *S, Py_ssize_t rows, Py_ssize_t k) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        REAL *orow = o + r * k;
        S[r] = CAT(softmax_row, SUFFIX)(net + r * k, orow, k, &M[r]);
        for (Py_ssize_t j = 0; j < k; j++) orow[j] /= S[r];
    }
}

/* deltaprop.native's cross_entropy_sum: Σ t·ln o over every row, from the softmax's own m and s */
static double CAT(cross_entropy_rows, SUFFIX)(const REAL *net, const REAL *M, const REAL *S, const REAL *t,
                                              Py_ssize_t rows, Py_ssize_t k) {
    double sum_t_ln_o = 0.0;
    for (Py_ssize_t r = 0; r < rows; r++)
        CAT(add_t_ln_o, SUFFIX)(net + r * k, t + r * k, M[r], LOG(S[r]), k, &sum_t_ln_o);
    return sum_t_ln_o;
}

/* sum[j] = Σ_r a[r, j] over the m rows of a, row after row, for the w columns of a that start at a (its rows are n
 * numbers apart) */
static NOINLINE WIDE void CAT(sum_rows, SUFFIX)(const REAL *a, REAL *sum, Py_ssize_t m, Py_ssize_t w, Py_ssize_t n) {
    memcpy(sum, a, w * sizeof(REAL));
    for (Py_ssize_t r = 1; r < m; r++)
        for (Py_ssize_t j = 0; j < w; j++) sum[j] += a[r * n + j];
}

/* How many rows of the outputs o (m × k) name their label: the first largest output (the first NaN, as np.argmax),
 * or for one output o > 0.5 (deltaprop.network.Network._class_index) */
static int64_t CAT(count_correct, SUFFIX)(const REAL *o, const int64_t *labels, Py_ssize_t m, Py_ssize_t k) {
    int64_t correct = 0;
    for (Py_ssize_t r = 0; labels != NULL && r < m; r++) {
        const REAL *row = o + r * k;
        Py_ssize_t argmax = 0;
        if (k == 1) {
            argmax = row[0] > (REAL)0.5;
        } else {
            REAL max = row[0];
            for (Py_ssize_t j = 1; j < k && max == max; j++)
                if (row[j] > max || row[j] != row[j]) {
                    max = row[j];
                    argmax = j;
                }
        }
        correct += argmax == labels[r];
    }
    return correct;
}

/* The output layer on `rows` rows of a batch of m: from net (rows × k, in out), the outputs o (into out),
 * δ_L = ∂E/∂net_L (into delta), and the sum of the loss's terms over these rows in double (loss_of_sum turns the
 * batch's sum into E). */
static double CAT(output_layer, SUFFIX)(int loss, int f, REAL alpha, REAL *out, const REAL *t, REAL *delta,
                                        Py_ssize_t rows, Py_ssize_t m, Py_ssize_t k) {
    double sum = 0.0;
    if (loss == LOSS_SOFTMAX_CE) { /* o = softmax(net), E = −(1/m) Σ t·ln o, δ = (o − t)/m */
        for (Py_ssize_t r = 0; r < rows; r++) {
            REAL *z = out + r * k, *d = delta + r * k, max;
            const REAL *tr = t + r * k;
            REAL total = CAT(softmax_row, SUFFIX)(z, d, k, &max); /* d = e^(net − max) for now */
            CAT(add_t_ln_o, SUFFIX)(z, tr, max, LOG(total), k, &sum); /* before z becomes o */
            for (Py_ssize_t j = 0; j < k; j++) {
                z[j] = d[j] / total;
                d[j] = (z[j] - tr[j]) / (REAL)m;
            }
        }
        return sum;
    }
    if (loss == LOSS_SIGMOID_BCE) { /* o = σ(net), E = (1/m) Σ softplus(net) − t·net, δ = (o − t)/m */
        for (Py_ssize_t j = 0; j < rows * k; j++) {
            REAL z = out[j];
            sum += (double)((z > 0 ? z : 0) - t[j] * z + LOG1P(EXP(-FABS(z)))); /* softplus(z) − t·z, stably */
            out[j] = (TANH(z * (REAL)0.5) + 1) * (REAL)0.5;
            delta[j] = (out[j] - t[j]) / (REAL)m;
        }
        return sum;
    }
    /* squared error: o = f(net), E = (1/m) Σ ½(t − o)², δ = ((o − t)/m) ⊙ f′; mse: E = Σ (t − o)²/(m·k),
     * δ = (o − t)·2/(m·k) ⊙ f′ */
    CAT(activate, SUFFIX)(f, alpha, out, out, rows * k);
    REAL scale = (REAL)(2.0 / ((double)m * (double)k));
    for (Py_ssize_t j = 0; j < rows * k; j++) {
        REAL diff = t[j] - out[j];
        sum += (double)(diff * diff);
        delta[j] = loss == LOSS_SQUARED_ERROR ? (out[j] - t[j]) / (REAL)m : (out[j] - t[j]) * scale;
    }
    CAT(activation_backward, SUFFIX)(f, alpha, delta, out, rows * k);
    return sum;
}

/* E of a batch of m rows (k outputs) from the sum output_layer gives over all its rows */
static double CAT(loss_of_sum, SUFFIX)(int loss, double sum, Py_ssize_t m, Py_ssize_t k) {
    if (loss == LOSS_SOFTMAX_CE) return -sum / (double)m;
    if (loss == LOSS_SIGMOID_BCE) return sum / (double)m;
    return loss == LOSS_SQUARED_ERROR ? 0.5 * sum / (double)m : sum / ((double)m * (double)k);
}

/* Sample weights, as deltaprop's NumPy path applies them (Network._backward, train._weighted_loss), on the rows
 * r0..r1 of a batch of m whose weights sum to total: each row's δ times w_r·m/Σw, and E = Σ_r w_r·E_r / Σw with E_r
 * the loss's elementwise form on the outputs o (deltaprop.losses: o clipped at LN_FLOOR before ln, or to
 * [BCE_MARGIN, 1 − BCE_MARGIN] for binary cross-entropy). Returns these rows' Σ_r w_r·E_r. */
static double CAT(weigh, SUFFIX)(int loss, const double *w, double total, const REAL *o, const REAL *t, REAL *delta,
                                 Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t m, Py_ssize_t k) {
    double sum = 0.0;
    for (Py_ssize_t r = r0; r < r1; r++) {
        REAL scale = (REAL)(total > 0 ? w[r] * ((double)m / total) : w[r] * 0.0), E_r = 0;
        const REAL *orow = o + r * k, *tr = t + r * k;
        for (Py_ssize_t j = 0; j < k; j++) {
            delta[r * k + j] *= scale;
            REAL oj = orow[j], tj = tr[j];
            if (loss == LOSS_SOFTMAX_CE) {
                E_r += -tj * LOG(oj > (REAL)LN_FLOOR ? (oj < 1 ? oj : 1) : (REAL)LN_FLOOR);
            } else if (loss == LOSS_SIGMOID_BCE) {
                const REAL lo = (REAL)BCE_MARGIN, hi = (REAL)(1 - BCE_MARGIN);
                REAL c = oj > lo ? (oj < hi ? oj : hi) : lo;
                E_r += -(tj * LOG(c) + (1 - tj) * LOG(1 - c));
            } else {
                REAL diff = tj - oj;
                E_r += loss == LOSS_SQUARED_ERROR ? (REAL)0.5 * diff * diff : diff * diff / (REAL)k;
            }
        }
        sum += (double)E_r * w[r];
    }
    return sum;
}

/* Whether x[0..count) holds a NaN or ±inf: v − v is 0 for every finite v and NaN otherwise (no fast-math here) */
static NOINLINE WIDE int CAT(any_nonfinite, SUFFIX)(const REAL *x, Py_ssize_t count) {
    int bad = 0;
    for (Py_ssize_t i = 0; i < count; i++) bad |= (x[i] - x[i]) != 0;
    return bad;
}

/* activate / activation_backward on the columns c0..c1 of an m × k block (rows k numbers apart): one pass when the
 * columns are whole rows, else row by row */
static void CAT(activate_columns, SUFFIX)(int f, REAL alpha, REAL *a, Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                                          Py_ssize_t k) {
    if (c1 - c0 == k) {
        CAT(activate, SUFFIX)(f, alpha, a, a, m * k);
        return;
    }
    for (Py_ssize_t r = 0; r < m; r++) CAT(activate, SUFFIX)(f, alpha, a + r * k + c0, a + r * k + c0, c1 - c0);
}

static void CAT(activation_backward_columns, SUFFIX)(int f, REAL alpha, REAL *g, const REAL *o, Py_ssize_t m,
                                                     Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t k) {
    if (c1 - c0 == k) {
        CAT(activation_backward, SUFFIX)(f, alpha, g, o, m * k);
        return;
    }
    for (Py_ssize_t r = 0; r < m; r++)
        CAT(activation_backward, SUFFIX)(f, alpha, g + r * k + c0, o + r * k + c0, c1 - c0);
}

/* The first and one-past-last of the n items thread t of T takes */
static void CAT(share, SUFFIX)(Py_ssize_t n, int t, int T, Py_ssize_t *first, Py_ssize_t *last) {
    *first = n * t / T;
    *last = n * (t + 1) / T;
}

/* Thread t's part of the step, on a team of T (T = 1: the whole step). Sets s->E (E of the batch) and s->correct
 * (the number of correct predictions). With check_inputs, a batch whose inputs hold a NaN or ±inf is not used:
 * s->refused is set and nothing but the scratch is written. */
static void CAT(sgd_step, SUFFIX)(struct sgd_step *s, int t, int T) {
    const Py_ssize_t m = s->m, L = s->n_layers, *n = s->sizes;
    REAL *W[MAX_LAYERS], *b[MAX_LAYERS], *bW[MAX_LAYERS], *bb[MAX_LAYERS]; /* θ's and the buffer's views */
    REAL *out[MAX_LAYERS], *delta[MAX_LAYERS];                              /* per layer, m rows each */
    REAL *theta = s->theta, *buffer = s->buffer, *scratch = s->scratch;
    struct step_part *mine = &s->parts[t];
    Py_ssize_t at = 0, r0, r1; /* this thread's rows of the batch: r0..r1 */
    CAT(share, SUFFIX)(m, t, T, &r0, &r1);
    for (Py_ssize_t i = 0; i < L; i++) { /* the layout of deltaprop.network.layer_views: W row-major, then b */
        W[i] = theta + at;
        bW[i] = buffer + at;
        at += n[i] * n[i + 1];
        b[i] = theta + at;
        bb[i] = buffer + at;
        at += n[i + 1];
    }
    REAL *x = (REAL *)s->X, *next = scratch;
    if (s->rows != NULL) { /* this batch's rows of X, in this epoch's order, into the scratch's first m rows */
        x = next;
        next += m * n[0];
        const REAL *X = s->X;
        for (Py_ssize_t r = r0; r < r1; r++) memcpy(x + r * n[0], X + s->rows[r] * n[0], n[0] * sizeof(REAL));
    }
    /* the rows are in cache: a cheap pass */
    mine->refused = s->check_inputs && CAT(any_nonfinite, SUFFIX)(x + r0 * n[0], (r1 - r0) * n[0]);
    REAL *db = next; /* Σ_rows δ of one layer */
    next += s->widest;
    for (Py_ssize_t i = 0; i < L; i++) {
        out[i] = next;
        delta[i] = next + m * n[i + 1];
        next += 2 * m * n[i + 1];
    }
    team_barrier(T); /* the batch is gathered */
    for (int u = 0; u < T; u++)
        if (s->parts[u].refused) {
            if (t == 0) s->refused = 1;
            return;
        }

    const REAL *below = x; /* forward: net_i = out_{i-1}·W_i + b_i, the bias put in first and added by the product */
    for (Py_ssize_t i = 0; i < L - 1; i++) { /* hidden layers: this thread's columns c0..c1 of every row */
        Py_ssize_t k = n[i + 1], c0, c1;
        CAT(share, SUFFIX)(k, t, T, &c0, &c1);
        if (c1 > c0) {
            for (Py_ssize_t r = 0; r < m; r++) memcpy(out[i] + r * k + c0, b[i] + c0, (c1 - c0) * sizeof(REAL));
            GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, m, c1 - c0, n[i], 1, below, n[i], W[i] + c0, k, 1, out[i] + c0, k);
            CAT(activate_columns, SUFFIX)(s->activations[i], (REAL)s->alphas[i], out[i], m, c0, c1, k);
        }
        team_barrier(T);
        below = out[i];
    }
    const Py_ssize_t k = n[L]; /* the output layer: this thread's rows r0..r1 */
    REAL *o = out[L - 1] + r0 * k, *d = delta[L - 1] + r0 * k;
    const REAL *targets = (const REAL *)s->T + r0 * k;
    for (Py_ssize_t r = r0; r < r1; r++) memcpy(out[L - 1] + r * k, b[L - 1], k * sizeof(REAL));
    if (r1 > r0)
        GEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, r1 - r0, k, n[L - 1], 1, below + r0 * n[L - 1], n[L - 1], W[L - 1], k, 1,
             o, k);
    mine->sum = CAT(output_layer, SUFFIX)(s->loss, s->activations[L - 1], (REAL)s->alphas[L - 1], o, targets, d,
                                          r1 - r0, m, k);
    if (s->weights != NULL)
        mine->sum = CAT(weigh, SUFFIX)(s->loss, s->weights, s->total_weight, out[L - 1], s->T, delta[L - 1], r0, r1,
                                       m, k);
    mine->correct = CAT(count_correct, SUFFIX)(o, s->labels ? s->labels + r0 : NULL, r1 - r0, k);
    team_barrier(T); /* δ_L and every layer's outputs are complete */
    double sum = 0.0;
    int64_t correct = 0;
    for (int u = 0; u < T; u++) {
        sum += s->parts[u].sum;
        correct += s->parts[u].correct;
    }
    double E = s->weights == NULL ? CAT(loss_of_sum, SUFFIX)(s->loss, sum, m, k)
                                  : (s->total_weight > 0 ? sum / s->total_weight : 0.0);
    if (t == 0) {
        s->E = E;
        s->correct = correct;
    }
    int update = s->update && isfinite(E);

    REAL beta = (REAL)s->beta;
    for (Py_ssize_t i = L - 1; i >= 0; i--) { /* backward, from the output layer down */
        Py_ssize_t a0, a1, c0, c1, w = n[i + 1];  /* this thread's rows a0..a1 of W_i, entries c0..c1 of b_i */
        CAT(share, SUFFIX)(n[i], t, T, &a0, &a1);
        CAT(share, SUFFIX)(w, t, T, &c0, &c1);
        below = i ? out[i - 1] : x;
        /* b_W ← β·b_W + out_{i-1}ᵀ·δ_i, its rows a0..a1 */
        if (a1 > a0)
            GEMM(ROW_MAJOR, TRANS, NO_TRANS, a1 - a0, w, m, 1, below + a0, n[i], delta[i], w, beta, bW[i] + a0 * w, w);
        /* b_b ← β·b_b + Σ_rows δ_i, the rows summed in order as np.add.reduce(δ, axis=0) does for two or more
         * columns (one column NumPy sums pairwise: the last bits may differ there) */
        if (c1 > c0) {
            REAL *into = beta == 0 ? bb[i] + c0 : db + c0;
            CAT(sum_rows, SUFFIX)(delta[i] + c0, into, m, c1 - c0, w);
            if (beta != 0)
                for (Py_ssize_t j = c0; j < c1; j++) bb[i][j] = bb[i][j] * beta + db[j];
        }
        if (i > 0 && a1 > a0) { /* δ_{i-1} = (δ_i·W_iᵀ) ⊙ f′_{i-1}, its columns a0..a1: from W_i's rows a0..a1 */
            GEMM(ROW_MAJOR, NO_TRANS, TRANS, m, a1 - a0, w, 1, delta[i], w, W[i] + a0 * w, w, 0, delta[i - 1] + a0,
                 n[i]);
            CAT(activation_backward_columns, SUFFIX)(s->activations[i - 1], (REAL)s->alphas[i - 1], delta[i - 1],
                                                     out[i - 1], m, a0, a1, n[i]);
        }
        if (update && T > 1) { /* θ ← θ − lr·b for the rows of W_i and entries of b_i this thread wrote to b (only
                                * it reads them: the other threads' δ_{i-1} take their own rows of W_i) */
            if (a1 > a0) AXPY((a1 - a0) * w, -(REAL)s->lr, bW[i] + a0 * w, 1, W[i] + a0 * w, 1);
            if (c1 > c0) AXPY(c1 - c0, -(REAL)s->lr, bb[i] + c0, 1, b[i] + c0, 1);
        }
        if (i > 0) team_barrier(T); /* δ_{i-1} is complete */
    }
    if (update && T == 1) AXPY(s->n_params, -(REAL)s->lr, buffer, 1, theta, 1); /* θ ← θ − lr·b, all at once */
}

#undef CAT
#undef CAT_
