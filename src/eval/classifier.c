/* classifier.c - training, saving and running the evaluation classifier (classifier.h). */
#include "eval/classifier.h"

#include <math.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "eval/metrics.h"
#include "io/checkpoint.h"
#include "train/adam.h"

#define CHUNK 128                          /* images per forward pass in predict (memory: ~0.3 MB each) */
#define STREAM_SHIFT (RNG_STREAM_USER + 1) /* augmentation shifts */

void classifier_params_default(classifier_params *p) {
    p->epochs = 5;
    p->batch = 128;
    p->lr = 2e-3f;
    p->max_shift = 2;
    p->seed = 1;
}

int classifier_feature_dim(const net *n) {
    const net_layer *L = &n->layers[n->nlayers - 2];
    return L->out_c * L->out_h * L->out_w;
}

/* Checks what predict relies on: 10 outputs from a last layer with a layer before it. */
static ebm_status check_shape(const net *n, const char *src) {
    if (n->out_dim != CLASSIFIER_CLASSES || n->nlayers < 2 || n->in_dim != 28 * 28)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: a classifier needs 28x28 inputs and %d outputs (spec '%s')", src,
                        CLASSIFIER_CLASSES, n->spec);
    return EBM_STATUS_OK;
}

/* Softmax of the logits z (m, 10) into p, in double for the exponentials. */
static void softmax_rows(float *p, const float *z, int m) {
    for (int i = 0; i < m; i++) {
        const float *zi = z + (long)i * CLASSIFIER_CLASSES;
        float *pi = p + (long)i * CLASSIFIER_CLASSES;
        float mx = zi[0];
        for (int j = 1; j < CLASSIFIER_CLASSES; j++) mx = zi[j] > mx ? zi[j] : mx;
        double s = 0;
        for (int j = 0; j < CLASSIFIER_CLASSES; j++) s += exp((double)(zi[j] - mx));
        for (int j = 0; j < CLASSIFIER_CLASSES; j++) pi[j] = (float)(exp((double)(zi[j] - mx)) / s);
    }
}

ebm_status classifier_predict(net *n, const float *x, int N, float *probs, float *feats) {
    EBM_TRY(check_shape(n, "classifier"));
    float z[CHUNK * CLASSIFIER_CLASSES];
    const net_layer *F = &n->layers[n->nlayers - 2];
    const int fd = classifier_feature_dim(n);
    for (int b = 0; b < N; b += CHUNK) {
        const int m = N - b < CHUNK ? N - b : CHUNK;
        EBM_TRY(net_forward(n, x + (long)b * n->in_dim, m, z));
        if (probs) softmax_rows(probs + (long)b * CLASSIFIER_CLASSES, z, m);
        /* net.h: layer l's output for images [0, B) starts at acts + act_off * max_batch */
        if (feats) memcpy(feats + (long)b * fd, n->acts + F->act_off * n->max_batch, sizeof(float) * (size_t)m * fd);
    }
    return EBM_STATUS_OK;
}

ebm_status classifier_accuracy(net *n, const dataset *d, double *acc) {
    float *p = ebm_alloc(sizeof(float) * (size_t)d->n * CLASSIFIER_CLASSES);
    int *y = ebm_alloc(sizeof(int) * (size_t)d->n);
    if (!p || !y) {
        ebm_free(p);
        ebm_free(y);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the predictions of %d images", d->n);
    }
    ebm_status s = classifier_predict(n, d->x, d->n, p, NULL);
    for (int i = 0; i < d->n; i++) y[i] = d->y[i];
    if (s == EBM_STATUS_OK) *acc = metrics_agreement(p, y, d->n);
    ebm_free(p);
    ebm_free(y);
    return s;
}

/* dst = src shifted by (dy, dx) pixels, background (-1) where nothing shifts in. */
static void shift_image(float *dst, const float *src, int h, int w, int dy, int dx) {
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            const int sr = r - dy, sc = c - dx;
            dst[r * w + c] = sr >= 0 && sr < h && sc >= 0 && sc < w ? src[sr * w + sc] : -1.0f;
        }
}

/* Mean softmax cross-entropy of logits z (B, 10) against labels y, and its gradient dz. */
static double xent(const float *z, const uint8_t *y, int B, float *dz, int *correct) {
    softmax_rows(dz, z, B);
    double loss = 0;
    for (int i = 0; i < B; i++) {
        float *d = dz + (long)i * CLASSIFIER_CLASSES;
        *correct += metrics_argmax(z + (long)i * CLASSIFIER_CLASSES, CLASSIFIER_CLASSES) == y[i];
        loss -= log((double)d[y[i]] + 1e-30);
        d[y[i]] -= 1.0f;
        for (int j = 0; j < CLASSIFIER_CLASSES; j++) d[j] /= (float)B;
    }
    return loss / B;
}

ebm_status classifier_train(const dataset *train, const dataset *test, const classifier_params *p, FILE *log,
                            net **out) {
    *out = NULL;
    if (train->h * train->w != 28 * 28)
        return ebm_fail(EBM_STATUS_BAD_FILE, "classifier: training images are %dx%d, expected 28x28", train->h,
                        train->w);
    net *n;
    EBM_TRY(net_create(&n, CLASSIFIER_SPEC, p->seed));
    const int B = p->batch, D = n->in_dim;
    float *xb = ebm_alloc(sizeof(float) * (size_t)B * D), *xs = ebm_alloc(sizeof(float) * (size_t)B * D);
    float *z = ebm_alloc(sizeof(float) * (size_t)B * CLASSIFIER_CLASSES);
    float *dz = ebm_alloc(sizeof(float) * (size_t)B * CLASSIFIER_CLASSES);
    uint8_t *yb = ebm_alloc((size_t)B);
    batcher bt = {0};
    ebm_rng rd = rng_make(p->seed, RNG_STREAM_DATA), rs = rng_make(p->seed, STREAM_SHIFT);
    ebm_status s = EBM_STATUS_OK;
    if (!xb || !xs || !z || !dz || !yb) s = ebm_fail(EBM_STATUS_NOMEM, "classifier: out of memory for a batch of %d", B);
    if (s == EBM_STATUS_OK) s = batcher_init(&bt, train, B, &rd);
    const long iters_per_epoch = (train->n + B - 1) / B, total = iters_per_epoch * p->epochs;
    const adam_params ap0 = {p->lr, 0.9f, 0.999f, 1e-8f};
    uint64_t t = 0;
    const double t0 = ebm_now();
    for (int e = 0; e < p->epochs && s == EBM_STATUS_OK; e++) {
        double loss_sum = 0;
        int correct = 0, seen = 0, m;
        if (e) batcher_reshuffle(&bt, &rd);
        while (s == EBM_STATUS_OK && (m = batcher_next(&bt, xb, yb)) > 0) {
            for (int i = 0; i < m; i++) {
                const int span = 2 * p->max_shift + 1;
                const int dy = (int)rng_below(&rs, (uint32_t)span) - p->max_shift;
                const int dx = (int)rng_below(&rs, (uint32_t)span) - p->max_shift;
                shift_image(xs + (long)i * D, xb + (long)i * D, 28, 28, dy, dx);
            }
            s = net_forward(n, xs, m, z);
            if (s != EBM_STATUS_OK) break;
            loss_sum += xent(z, yb, m, dz, &correct) * m;
            seen += m;
            memset(n->grads, 0, sizeof(float) * n->nparams);
            net_backward(n, dz, m, NULL, 1);
            adam_params ap = ap0; /* cosine from lr to lr/20: the last epochs settle the weights */
            ap.lr = (float)(p->lr * (0.05 + 0.95 * 0.5 * (1 + cos(M_PI * (double)t / (double)total))));
            adam_step(n->params, n->grads, n->adam_m, n->adam_v, n->nparams, &ap, ++t);
            if (log && t % 100 == 0)
                fprintf(log, "\r  classifier epoch %d/%d  %3.0f%%  loss %.4f  train acc %.4f  %.0f images/s ", e + 1,
                        p->epochs, 100.0 * (double)(t - (uint64_t)e * iters_per_epoch) / iters_per_epoch,
                        loss_sum / seen, (double)correct / seen, (double)t * B / (ebm_now() - t0)), fflush(log);
        }
        if (s != EBM_STATUS_OK) break;
        if (!isfinite(loss_sum)) s = ebm_fail(EBM_STATUS_DIVERGED, "classifier training diverged in epoch %d", e + 1);
        double acc = NAN;
        if (s == EBM_STATUS_OK && test) s = classifier_accuracy(n, test, &acc);
        if (log && s == EBM_STATUS_OK)
            fprintf(log, "\r  classifier epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  (%.0f s)\n", e + 1,
                    p->epochs, loss_sum / seen, (double)correct / seen, acc, ebm_now() - t0);
    }
    batcher_free(&bt);
    ebm_free(xb);
    ebm_free(xs);
    ebm_free(z);
    ebm_free(dz);
    ebm_free(yb);
    if (s != EBM_STATUS_OK) {
        net_free(n);
        return s;
    }
    *out = n;
    return EBM_STATUS_OK;
}

ebm_status classifier_save(const char *path, const net *n, double test_accuracy, const char *command) {
    char acc[32];
    snprintf(acc, sizeof acc, "%.4f", test_accuracy);
    const ckpt_meta meta[] = {
        {"test_accuracy", acc},
        {"command", command ? command : ""},
        {"features", "penultimate activations: the Swish after the 128-unit dense layer"},
        {"training", "softmax cross-entropy, Adam, cosine learning rate, shifts of up to 2 pixels"},
    };
    return ckpt_save(path, n, CLASSIFIER_FORMAT, NULL, 0, meta, (int)(sizeof meta / sizeof meta[0]));
}

ebm_status classifier_load(const char *path, net **out, double *recorded_accuracy) {
    *out = NULL;
    st_file f;
    EBM_TRY(ckpt_open(path, &f));
    const char *fmt = ckpt_meta_get(&f, "format"), *acc = ckpt_meta_get(&f, "test_accuracy");
    if (!fmt || strcmp(fmt, CLASSIFIER_FORMAT) != 0) {
        ebm_status s = ebm_fail(EBM_STATUS_BAD_FILE,
                                "%s is a '%s' file, not an evaluation classifier ('%s'); give --classifier a "
                                "classifier file, or a path that does not exist yet to train one there",
                                path, fmt ? fmt : "unknown", CLASSIFIER_FORMAT);
        st_free(&f); /* after the message: fmt points into f */
        return s;
    }
    if (recorded_accuracy) *recorded_accuracy = acc ? strtod(acc, NULL) : NAN;
    net *n;
    ebm_status s = ckpt_load_net(&f, 0, &n);
    st_free(&f);
    if (s != EBM_STATUS_OK) return s;
    s = check_shape(n, path);
    if (s != EBM_STATUS_OK) {
        net_free(n);
        return s;
    }
    *out = n;
    return EBM_STATUS_OK;
}
