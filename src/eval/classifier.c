/* classifier.c - training, saving and running the evaluation classifier (classifier.h). */
#include "eval/classifier.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/rng.h"
#include "eval/metrics.h"
#include "io/checkpoint.h"
#include "train/adam.h"

#define CHUNK 128                          /* images per forward pass in predict (memory: ~0.3 MB each) */
#define STREAM_AUGMENT (RNG_STREAM_USER + 1) /* augmentation maps */

void classifier_params_default(classifier_params *p) {
    p->epochs = 12;
    p->batch = 128;
    p->lr = 2e-3f;
    p->max_shift = 2.0f;
    p->max_rotate = 12.0f;
    p->max_scale = 0.1f;
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

/* dst = src under a random small affine map: rotation by up to +-max_rot degrees, scaling
 * by 1 +- max_scale and a shift of up to +-max_shift pixels about the image centre, with
 * bilinear interpolation and background (-1) where nothing maps in.  Handwriting varies in
 * exactly these ways, and the classifier that sees them generalises to the test writers. */
static void augment_image(float *dst, const float *src, int h, int w, const classifier_params *p, ebm_rng *r) {
    const double ang = (2 * rng_uniform(r) - 1) * p->max_rotate * M_PI / 180.0;
    const double sc = 1.0 + (2 * rng_uniform(r) - 1) * p->max_scale;
    const double ty = (2 * rng_uniform(r) - 1) * p->max_shift, tx = (2 * rng_uniform(r) - 1) * p->max_shift;
    const double ca = cos(ang) / sc, sa = sin(ang) / sc, cy = 0.5 * (h - 1), cx = 0.5 * (w - 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            /* inverse map: where in src this output pixel comes from */
            const double oy = y - cy - ty, ox = x - cx - tx;
            const double sy = ca * oy - sa * ox + cy, sx = sa * oy + ca * ox + cx;
            const int y0 = (int)floor(sy), x0 = (int)floor(sx);
            const double fy = sy - y0, fx = sx - x0;
            double v = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    const int yy = y0 + dy, xx = x0 + dx;
                    const double wgt = (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx);
                    v += wgt * (yy >= 0 && yy < h && xx >= 0 && xx < w ? src[yy * w + xx] : -1.0f);
                }
            dst[y * w + x] = (float)v;
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
    ebm_rng rd = rng_make(p->seed, RNG_STREAM_DATA), rs = rng_make(p->seed, STREAM_AUGMENT);
    ebm_status s = EBM_STATUS_OK;
    if (!xb || !xs || !z || !dz || !yb) s = ebm_fail(EBM_STATUS_NOMEM, "classifier: out of memory for a batch of %d", B);
    if (s == EBM_STATUS_OK) s = batcher_init(&bt, train, B, &rd);
    const long iters_per_epoch = (train->n + B - 1) / B, total = iters_per_epoch * p->epochs;
    const adam_params ap0 = {p->lr, 0.9f, 0.999f, 1e-8f};
    uint64_t t = 0;
    const double t0 = ebm_now();
    const int tty = log && isatty(fileno(log)); /* a progress line that rewrites itself, on terminals only */
    for (int e = 0; e < p->epochs && s == EBM_STATUS_OK; e++) {
        double loss_sum = 0;
        int correct = 0, seen = 0, m;
        if (e) batcher_reshuffle(&bt, &rd);
        while (s == EBM_STATUS_OK && (m = batcher_next(&bt, xb, yb)) > 0) {
            for (int i = 0; i < m; i++) augment_image(xs + (long)i * D, xb + (long)i * D, 28, 28, p, &rs);
            s = net_forward(n, xs, m, z);
            if (s != EBM_STATUS_OK) break;
            loss_sum += xent(z, yb, m, dz, &correct) * m;
            seen += m;
            memset(n->grads, 0, sizeof(float) * n->nparams);
            net_backward(n, dz, m, NULL, 1);
            adam_params ap = ap0; /* cosine from lr to lr/20: the last epochs settle the weights */
            ap.lr = (float)(p->lr * (0.05 + 0.95 * 0.5 * (1 + cos(M_PI * (double)t / (double)total))));
            adam_step(n->params, n->grads, n->adam_m, n->adam_v, n->nparams, &ap, ++t);
            if (log && tty && t % 100 == 0)
                fprintf(log, "\r  classifier epoch %d/%d  %3.0f%%  loss %.4f  train acc %.4f  %.0f images/s ", e + 1,
                        p->epochs, 100.0 * (double)(t - (uint64_t)e * iters_per_epoch) / iters_per_epoch,
                        loss_sum / seen, (double)correct / seen, (double)t * B / (ebm_now() - t0)), fflush(log);
        }
        if (s != EBM_STATUS_OK) break;
        if (!isfinite(loss_sum)) s = ebm_fail(EBM_STATUS_DIVERGED, "classifier training diverged in epoch %d", e + 1);
        double acc = NAN;
        if (s == EBM_STATUS_OK && test) s = classifier_accuracy(n, test, &acc);
        if (log && s == EBM_STATUS_OK)
            fprintf(log, "%s  classifier epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  (%.0f s)\n",
                    tty ? "\r" : "", e + 1, p->epochs, loss_sum / seen, (double)correct / seen, acc, ebm_now() - t0);
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
        {"training", "softmax cross-entropy, Adam, cosine learning rate, random rotations, scalings and shifts"},
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
