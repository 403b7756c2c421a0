/* test_server.c - the HTTP server of `ebm serve` in-process, on a free loopback port, with
 * random-weight models made here (no file from outside the repository), through a raw
 * socket client (so that requests can be as malformed as needed):
 *   - the page and its assets; 404 for every other path ("../" included), 405, 415, 403;
 *   - /api/sample gives the images and energies that Langevin from the documented start
 *     gives (recomputed here on a separate copy of the network), as PNG and as JSON;
 *   - /api/chain streams frames whose last one equals /api/sample's result for the same
 *     seed (the chunked run is the same chain), then "done";
 *   - /api/energy matches the network, p(y|x) sums to 1; /api/complete keeps the kept
 *     pixels (inpaint) or starts from the drawing (denoise);
 *   - every bad parameter gets 400 with a message naming it; 10 MB bodies get 413;
 *   - concurrent requests get the answers of sequential ones; an idle connection is
 *     closed after the timeout; compute beyond max_busy gets 503; the server stays up. */
#include "testutil.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <netinet/in.h>
#include <png.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "core/common.h"
#include "core/net.h"
#include "core/rng.h"
#include "io/image.h"
#include "io/metrics.h"
#include "sample/langevin.h"
#include "server/params.h"
#include "server/server.h"
#include "train/backend.h"

#define D 784
#define SEED_NET 7

static char dir[256], log_path[300], samples_path[300];
static net *nets[2], *refs[2];  /* served networks, and reference copies for expectations */
static server_model models[2];
static server *srv;
static int port;

/* ---- a tiny HTTP/1.1 client --------------------------------------------------------- */

typedef struct {
    int status;
    char *head;  /* status line and headers */
    char *body;  /* de-chunked, NUL-terminated */
    size_t len;
} resp;

static void resp_free(resp *r) {
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int dial(int p) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)p);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) fail_msg("cannot connect to port %d", p);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);
        if (k <= 0) return; /* the server may answer and close early: read its answer */
        buf += k, len -= (size_t)k;
    }
}

static char *read_all(int fd, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (n == cap) b = realloc(b, (cap *= 2) + 1);
        ssize_t k = recv(fd, b + n, cap - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* Splits a raw response into status, head and (de-chunked) body. */
static resp parse(char *raw, size_t n) {
    resp r = {0};
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep) fail_msg("no complete response (%zu bytes): %.200s", n, raw);
    r.head = strndup(raw, (size_t)(sep - raw));
    sscanf(raw, "HTTP/1.%*d %d", &r.status);
    const char *p = sep + 4, *end = raw + n;
    if (strcasestr(r.head, "transfer-encoding: chunked")) {
        r.body = malloc((size_t)(end - p) + 1);
        for (;;) {
            char *eol;
            size_t k = strtoul(p, &eol, 16);
            if (eol == p || k == 0) break;
            p = strstr(eol, "\r\n") + 2;
            memcpy(r.body + r.len, p, k);
            r.len += k;
            p += k + 2;
        }
        r.body[r.len] = 0;
    } else {
        r.len = (size_t)(end - p);
        r.body = malloc(r.len + 1); /* may be binary (PNG) */
        memcpy(r.body, p, r.len);
        r.body[r.len] = 0;
    }
    free(raw);
    return r;
}

/* One request on a fresh connection; headers: extra lines, each ending in \r\n. */
static resp request_to(int p, const char *method, const char *path, const char *headers, const char *body,
                       size_t len) {
    int fd = dial(p);
    char head[2048];
    int k = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nConnection: close\r\n%s", method, path,
                     headers ? headers : "");
    if (!headers || !strstr(headers, "Host:")) k += snprintf(head + k, sizeof head - (size_t)k, "Host: 127.0.0.1:%d\r\n", p);
    if (body) k += snprintf(head + k, sizeof head - (size_t)k, "Content-Length: %zu\r\n", len);
    snprintf(head + k, sizeof head - (size_t)k, "\r\n");
    send_all(fd, head, strlen(head));
    if (body) send_all(fd, body, len);
    size_t n;
    char *raw = read_all(fd, &n);
    close(fd);
    return parse(raw, n);
}

static resp get(const char *path) { return request_to(port, "GET", path, NULL, NULL, 0); }

static resp post(const char *path, const char *json) {
    return request_to(port, "POST", path, "Content-Type: application/json\r\n", json, strlen(json));
}

/* Checks an error reply: status and a JSON {"error"} containing `want`. */
static void expect_error(resp *r, int status, const char *want, const char *what) {
    cJSON *j = cJSON_Parse(r->body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (r->status != status || !cJSON_IsString(e) || !strstr(e->valuestring, want))
        fail_msg("%s: expected %d with \"%s\", got %d: %s", what, status, want, r->status, r->body);
    printf("  %-34s %d %s\n", what, r->status, e->valuestring);
    cJSON_Delete(j);
    resp_free(r);
}

static cJSON *expect_json(resp *r, const char *what) {
    if (r->status != 200) fail_msg("%s: status %d: %s", what, r->status, r->body);
    if (!strcasestr(r->head, "content-type: application/json")) fail_msg("%s: not JSON: %s", what, r->head);
    cJSON *j = cJSON_Parse(r->body);
    if (!j) fail_msg("%s: malformed JSON reply", what);
    resp_free(r);
    return j;
}

/* ---- pictures ----------------------------------------------------------------------- */

static unsigned char *b64_decode(const char *s, size_t *len) {
    size_t n = strlen(s);
    unsigned char *out = malloc(n / 4 * 3 + 3);
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *c = strchr(tab, s[i]);
        if (!c) fail_msg("bad base64 character '%c'", s[i]);
        v = v << 6 | (unsigned)(c - tab);
        if ((bits += 6) >= 8) out[o++] = (unsigned char)(v >> (bits -= 8));
    }
    *len = o;
    return out;
}

/* The PNG bytes of a "data:image/png;base64," URL. */
static unsigned char *data_url_png(const char *url, size_t *len) {
    const char *prefix = "data:image/png;base64,";
    if (strncmp(url, prefix, strlen(prefix)) != 0) fail_msg("not a PNG data URL: %.40s", url);
    return b64_decode(url + strlen(prefix), len);
}

/* Decodes a gray PNG: pixels malloc'ed, size in W, H. */
static unsigned char *png_gray(const unsigned char *png, size_t len, int *W, int *H) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, png, len)) fail_msg("libpng: %s", im.message);
    im.format = PNG_FORMAT_GRAY;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(im));
    if (!png_image_finish_read(&im, NULL, px, 0, NULL)) fail_msg("libpng: %s", im.message);
    *W = (int)im.width, *H = (int)im.height;
    return px;
}

/* ---- expectations, on the reference networks ----------------------------------------- */

static ebm_status ref_energy(void *ctx, const float *x, int n, float *E, float *g) {
    return net_energy(ctx, x, n, NULL, E, g);
}

static ebm_status keep_energies(void *ud, int step, const float *x, const float *E, int n, int dim) {
    memcpy(ud, E, sizeof(float) * (size_t)n);
    return EBM_STATUS_OK;
}

/* What `ebm sample` (and the API) must give: chains from the documented uniform start. */
static void expected_samples(int model, int n, int steps, uint64_t seed, float *x, float *E) {
    for (int i = 0; i < n; i++) {
        rng_uniform_fill(seed, RNG_STREAM_START, (uint32_t)i, 0, x + (size_t)i * D, D);
        for (int k = 0; k < D; k++) x[(size_t)i * D + k] = -1.f + 2.f * x[(size_t)i * D + k];
    }
    langevin_params p = {0, 10.f, 0.005f, 0.03f, -1.f, 1.f, seed, 0, 0};
    assert_int_equal(langevin_run(ref_energy, refs[model], x, n, D, steps, &p, NULL, keep_energies, E, 0),
                     EBM_STATUS_OK);
}

static const char *str(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v)) fail_msg("reply has no string '%s'", key);
    return v->valuestring;
}

static double number(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) fail_msg("reply has no number '%s'", key);
    return v->valuedouble;
}

static void check_energies(const cJSON *j, const float *want, int n, const char *what) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "energies");
    assert_int_equal(cJSON_GetArraySize(arr), n);
    float got[64];
    for (int i = 0; i < n; i++) got[i] = (float)cJSON_GetArrayItem(arr, i)->valuedouble;
    tu_check_close(what, got, want, (size_t)n, 1e-6, 1e-5); /* JSON carries 7 digits */
}

#define BODY_CAP (2 * 16 * D + 512)

/* Appends "key": [784 values v(k)] to the JSON text in b (which starts with "{"). */
static void add_image(char *b, const char *key, float (*v)(int)) {
    size_t k = strlen(b);
    k += (size_t)snprintf(b + k, BODY_CAP - k, "%s\"%s\": [", k > 1 ? ", " : "", key);
    for (int i = 0; i < D; i++) k += (size_t)snprintf(b + k, BODY_CAP - k, "%s%.4f", i ? "," : "", v(i));
    snprintf(b + k, BODY_CAP - k, "]");
}

/* A drawing: a bright bar in rows 6..21, columns 12..15, else black. */
static float drawing(int i) {
    int y = i / 28, x = i % 28;
    return y >= 6 && y < 22 && x >= 12 && x < 16 ? 1.f : -1.f;
}

/* ---- fixtures ----------------------------------------------------------------------- */

static server_config config(void) {
    server_config c = server_config_default();
    c.port = 0;
    c.models = models;
    c.nmodels = 2;
    c.metrics_path = log_path;
    c.timeout_s = 2;
    c.quiet = 1;
    return c;
}

static int setup(void **state) {
    tu_tmpdir(dir, sizeof dir);
    snprintf(log_path, sizeof log_path, "%s/run-metrics.jsonl", dir);
    snprintf(samples_path, sizeof samples_path, "%s/run-samples.png", dir);
    const char *specs[2] = {"cnn-small", "cnn-small-cond"}, *names[2] = {"plain", "cond"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(net_create(&nets[i], specs[i], SEED_NET), EBM_STATUS_OK);
        assert_int_equal(net_create(&refs[i], specs[i], SEED_NET), EBM_STATUS_OK);
        train_hparams hp;
        memset(&hp, 0, sizeof hp);
        hp.lv.lo = -1.f, hp.lv.hi = 1.f;
        models[i] = (server_model){names[i], nets[i], {0}, 10.f, 0.005f, 0.03f, -1.f, 1.f, 256, i == 1, 0};
        if (i == 1) models[i].digits = 0x1FF; /* as if trained with --digits 0-8: 9 is refused */
        assert_int_equal(backend_cpu_create(nets[i], &hp, &models[i].be), EBM_STATUS_OK);
    }
    /* a training log and its sample grid, as ebm train leaves them */
    metrics_log *m;
    assert_int_equal(metrics_open(log_path, 0, &m), EBM_STATUS_OK);
    for (int it = 1; it <= 3; it++) {
        metrics_row r = {(uint64_t)it, 0.5 * it, -0.1f * it, -0.2f, 0.1f, 1.5f, 1e-4f};
        assert_int_equal(metrics_append(m, &r), EBM_STATUS_OK);
    }
    metrics_close(m);
    float img[2 * D];
    for (int k = 0; k < 2 * D; k++) img[k] = drawing(k % D);
    assert_int_equal(png_write_grid(samples_path, img, 2, 28, 28, 1, 2, 1), EBM_STATUS_OK);
    server_config c = config();
    assert_int_equal(server_start(&c, &srv), EBM_STATUS_OK);
    port = server_port(srv);
    assert_true(port > 0);
    return 0;
}

static int teardown(void **state) {
    server_stop(srv);
    for (int i = 0; i < 2; i++) {
        models[i].be.destroy(models[i].be.ctx);
        net_free(nets[i]);
        net_free(refs[i]);
    }
    unlink(log_path);
    unlink(samples_path);
    rmdir(dir);
    return 0;
}

/* ---- the page and routing ----------------------------------------------------------- */

static void test_page_and_assets_come_from_the_binary(void **state) {
    const char *paths[] = {"/", "/index.html", "/app.js", "/style.css"};
    const char *types[] = {"text/html", "text/html", "text/javascript", "text/css"};
    for (int i = 0; i < 4; i++) {
        resp r = get(paths[i]);
        char want[64];
        snprintf(want, sizeof want, "content-type: %s", types[i]);
        if (r.status != 200 || !strcasestr(r.head, want) || r.len < 100)
            fail_msg("%s: %d, %zu bytes, head %s", paths[i], r.status, r.len, r.head);
        if (i < 2) {
            assert_non_null(strstr(r.body, "/app.js"));
            assert_non_null(strcasestr(r.head, "content-security-policy: default-src 'self'"));
        }
        printf("  %-12s %d %zu bytes\n", paths[i], r.status, r.len);
        resp_free(&r);
    }
}

static void test_unknown_paths_and_traversal_get_404(void **state) {
    const char *paths[] = {"/nope", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/web/index.html",
                           "/index.html/..", "/api", "/api/", "/api/sample/../models", "//etc/passwd",
                           "/app.js%00.png"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        resp r = get(paths[i]);
        expect_error(&r, 404, "no such page or endpoint", paths[i]);
    }
}

static void test_wrong_method_content_type_and_host_are_refused(void **state) {
    resp r = get("/api/sample");
    assert_non_null(strcasestr(r.head, "allow: POST"));
    expect_error(&r, 405, "takes POST", "GET /api/sample");
    r = request_to(port, "DELETE", "/", NULL, NULL, 0);
    expect_error(&r, 405, "read with GET", "DELETE /");
    r = post("/api/models", "{}");
    expect_error(&r, 405, "takes GET", "POST /api/models");
    r = request_to(port, "POST", "/api/sample", "Content-Type: text/plain\r\n", "{}", 2);
    expect_error(&r, 415, "Content-Type: application/json", "text/plain body");
    r = request_to(port, "POST", "/api/sample", NULL, "{}", 2);
    expect_error(&r, 415, "Content-Type: application/json", "no content type");
    r = request_to(port, "GET", "/api/models", "Host: evil.example\r\n", NULL, 0);
    expect_error(&r, 403, "answers only to localhost", "foreign Host");
    const char *ok_hosts[] = {"Host: localhost:80\r\n", "Host: [::1]:8080\r\n", "Host: 127.0.0.2\r\n"};
    for (int i = 0; i < 3; i++) {
        r = request_to(port, "GET", "/api/models", ok_hosts[i], NULL, 0);
        assert_int_equal(r.status, 200);
        resp_free(&r);
    }
}

/* ---- /api/models and /api/metrics --------------------------------------------------- */

static void test_models_lists_each_model_with_defaults_and_limits(void **state) {
    resp r = get("/api/models");
    cJSON *j = expect_json(&r, "models");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "models");
    assert_int_equal(cJSON_GetArraySize(list), 2);
    const cJSON *m0 = cJSON_GetArrayItem(list, 0), *m1 = cJSON_GetArrayItem(list, 1);
    assert_string_equal(str(m0, "name"), "plain");
    assert_string_equal(str(m1, "name"), "cond");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(m0, "conditional")));
    assert_int_equal((int)number(m1, "classes"), 10);
    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(m1, "digits");
    assert_int_equal(cJSON_GetArraySize(dl), 9);
    assert_true(cJSON_GetArrayItem(dl, 0)->valuedouble == 0 && cJSON_GetArrayItem(dl, 8)->valuedouble == 8);
    assert_null(cJSON_GetObjectItemCaseSensitive(m0, "digits"));
    assert_int_equal((int)number(m0, "params"), (int)nets[0]->nparams);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m0, "defaults");
    assert_true(number(d, "eps") == 10 && number(d, "steps") == 256);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "limits");
    assert_true(number(l, "n") == API_MAX_N && number(l, "steps") == API_MAX_STEPS &&
                number(l, "body_bytes") == API_MAX_BODY);
    cJSON_Delete(j);
}

static void test_metrics_gives_the_log_columns_and_the_sample_grid(void **state) {
    resp r = get("/api/metrics");
    cJSON *j = expect_json(&r, "metrics");
    assert_int_equal((int)number(j, "rows"), 3);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "columns");
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c, "iteration"), *loss = cJSON_GetObjectItemCaseSensitive(c, "loss");
    assert_int_equal(cJSON_GetArraySize(it), 3);
    for (int i = 0; i < 3; i++) {
        assert_true(cJSON_GetArrayItem(it, i)->valuedouble == i + 1);
        assert_true(fabs(cJSON_GetArrayItem(loss, i)->valuedouble + 0.1 * (i + 1)) < 1e-6);
    }
    /* the grid beside the log (<run>-samples.png), byte for byte */
    size_t len, flen;
    unsigned char *png = data_url_png(str(j, "samples"), &len);
    FILE *f = fopen(samples_path, "rb");
    unsigned char file[65536];
    flen = fread(file, 1, sizeof file, f);
    fclose(f);
    assert_true(len == flen && memcmp(png, file, len) == 0);
    free(png);
    cJSON_Delete(j);

    /* a server without a log says how to give one */
    server_config c2 = config();
    c2.metrics_path = NULL;
    server *s2;
    assert_int_equal(server_start(&c2, &s2), EBM_STATUS_OK);
    r = request_to(server_port(s2), "GET", "/api/metrics", NULL, NULL, 0);
    expect_error(&r, 404, "--metrics", "no log");
    server_stop(s2);
}

/* ---- /api/sample -------------------------------------------------------------------- */

static void test_sample_png_is_the_documented_langevin_result(void **state) {
    float x[4 * D], E[4];
    expected_samples(0, 4, 12, 5, x, E);
    resp r = post("/api/sample", "{\"n\": 4, \"steps\": 12, \"seed\": 5, \"format\": \"png\", \"scale\": 3}");
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "content-type: image/png"));
    unsigned char *want;
    size_t wlen;
    assert_int_equal(png_encode_grid_mem(x, 4, 28, 28, 2, 2, 3, &want, &wlen), EBM_STATUS_OK);
    if (r.len != wlen || memcmp(r.body, want, wlen) != 0) fail_msg("PNG differs from the expected grid");
    /* the memory encoder writes what png_write_grid writes */
    char path[300];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    assert_int_equal(png_write_grid(path, x, 4, 28, 28, 2, 2, 3), EBM_STATUS_OK);
    FILE *f = fopen(path, "rb");
    unsigned char *file = malloc(wlen + 1);
    assert_int_equal(fread(file, 1, wlen + 1, f), wlen);
    fclose(f);
    unlink(path);
    assert_memory_equal(file, want, wlen);
    printf("  PNG of %zu bytes equals the expected grid and png_write_grid's file\n", wlen);
    free(file);
    free(want);
    resp_free(&r);
}

static void test_sample_json_has_energies_grid_and_settings(void **state) {
    float x[6 * D], E[6];
    expected_samples(0, 6, 20, 11, x, E);
    resp r = post("/api/sample", "{\"n\": 6, \"cols\": 3, \"steps\": 20, \"seed\": 11}");
    cJSON *j = expect_json(&r, "sample");
    check_energies(j, E, 6, "sample energies");
    assert_true(number(j, "rows") == 2 && number(j, "cols") == 3 && number(j, "seed") == 11);
    assert_true(number(j, "acceptance") == 1 && number(j, "eps") == 10 && number(j, "steps") == 20);
    assert_string_equal(str(j, "sampler"), "ula");
    size_t len;
    unsigned char *png = data_url_png(str(j, "image"), &len);
    int W, H;
    unsigned char *px = png_gray(png, len, &W, &H);
    assert_int_equal(W, 3 * 30 * 2 - 4); /* 3 columns of 28 + gutters, scale 2 */
    assert_int_equal(H, 2 * 30 * 2 - 4);
    unsigned char u8[D];
    image_to_u8(u8, x + 5 * D, D); /* image 5 sits at row 1, column 2 */
    for (int k = 0; k < D; k++) assert_int_equal(px[(60 + 2 * (k / 28)) * W + 120 + 2 * (k % 28)], u8[k]);
    free(px);
    free(png);
    cJSON_Delete(j);
}

static void test_sample_seeds_mala_and_digits(void **state) {
    resp a = post("/api/sample", "{\"n\": 2, \"steps\": 5, \"seed\": 3}");
    resp b = post("/api/sample", "{\"n\": 2, \"steps\": 5, \"seed\": 3}");
    resp c = post("/api/sample", "{\"n\": 2, \"steps\": 5, \"seed\": 4}");
    cJSON *ja = expect_json(&a, "seed 3"), *jb = expect_json(&b, "seed 3 again"), *jc = expect_json(&c, "seed 4");
    assert_string_equal(str(ja, "image"), str(jb, "image"));
    assert_string_not_equal(str(ja, "image"), str(jc, "image"));
    cJSON_Delete(ja), cJSON_Delete(jb), cJSON_Delete(jc);
    resp m = post("/api/sample", "{\"n\": 4, \"steps\": 10, \"sampler\": \"mala\", \"eps\": 0.001, \"noise\": \"auto\"}");
    cJSON *jm = expect_json(&m, "mala");
    double acc = number(jm, "acceptance");
    printf("  MALA acceptance %.3f, noise %.6f\n", acc, number(jm, "noise"));
    assert_true(acc >= 0 && acc <= 1);
    assert_true(fabs(number(jm, "noise") - sqrt(2 * 0.001)) < 1e-6);
    cJSON_Delete(jm);
    resp d = post("/api/sample", "{\"model\": \"cond\", \"n\": 2, \"steps\": 3, \"digit\": 7}");
    cJSON *jd = expect_json(&d, "digit 7");
    assert_true(number(jd, "digit") == 7);
    assert_string_equal(str(jd, "model"), "cond");
    cJSON_Delete(jd);
}

static void test_bad_sample_parameters_get_400_naming_them(void **state) {
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"n\":", "malformed JSON"},
        {"{\"eps\": NaN}", "malformed JSON"},
        {"{\"n\": 4} trailing", "after the object"},
        {"[1, 2]", "must be a JSON object"},
        {"", "empty body"},
        {"{\"eps\": 1e999}", "eps must be a finite number"},
        {"{\"n\": 0}", "n must be an integer from 1 to 64"},
        {"{\"n\": 65}", "n must be an integer from 1 to 64"},
        {"{\"n\": 2.5}", "n must be an integer"},
        {"{\"n\": \"16\"}", "n must be a number"},
        {"{\"steps\": 1001}", "steps must be an integer from 0 to 1000"},
        {"{\"steps\": -1}", "steps must be an integer from 0 to 1000"},
        {"{\"eps\": -1}", "eps must be from 0"},
        {"{\"noise\": 11}", "noise must be from 0 to 10"},
        {"{\"noise\": \"loud\"}", "noise must be a number"},
        {"{\"sampler\": \"gibbs\"}", "sampler must be ula or mala"},
        {"{\"sampler\": \"mala\", \"noise\": 0}", "MALA sampler needs noise > 0"},
        {"{\"seed\": -1}", "seed must be an integer from 0 to 2^53"},
        {"{\"seed\": 1.5}", "seed must be an integer"},
        {"{\"scale\": 9}", "scale must be an integer from 1 to 8"},
        {"{\"rows\": 2, \"cols\": 2, \"n\": 5}", "a 2x2 grid holds 4 images"},
        {"{\"format\": \"gif\"}", "format must be json or png"},
        {"{\"model\": \"nope\"}", "unknown model 'nope'; this server has: plain, cond"},
        {"{\"model\": 3}", "model must be a string"},
        {"{\"digit\": 3}", "model 'plain' is not class-conditional"},
        {"{\"model\": \"cond\", \"digit\": 10}", "digit must be from 0 to 9"},
        {"{\"model\": \"cond\", \"digit\": 9}", "model 'cond' was not trained on digit 9"},
        {"{\"temperature\": 1}", "unknown parameter 'temperature'"},
        {"{\"n\": 1, \"n\": 2}", "parameter 'n' given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r = post("/api/sample", cases[i].body);
        expect_error(&r, 400, cases[i].want, cases[i].body[0] ? cases[i].body : "(empty)");
    }
}

/* ---- /api/chain --------------------------------------------------------------------- */

static void test_chain_streams_frames_that_end_where_sample_ends(void **state) {
    resp r = get("/api/chain?n=4&steps=14&every=5&seed=9");
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.head, "content-type: text/event-stream"));
    const int want_steps[] = {0, 5, 10, 14};
    int frames = 0, done = 0;
    cJSON *last = NULL;
    for (char *ev = r.body, *next; ev && *ev; ev = next) {
        next = strstr(ev, "\n\n");
        if (next) *next = 0, next += 2;
        char *data = strstr(ev, "\ndata: ");
        assert_non_null(data);
        cJSON *j = cJSON_Parse(data + 7);
        assert_non_null(j);
        if (strncmp(ev, "event: frame", 12) == 0) {
            assert_false(done);
            assert_true(frames < 4 && number(j, "step") == want_steps[frames] && number(j, "steps") == 14);
            assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "energies")), 4);
            frames++;
            cJSON_Delete(last);
            last = j;
        } else {
            assert_int_equal(strncmp(ev, "event: done", 11), 0);
            assert_true(number(j, "steps") == 14 && number(j, "every") == 5 && number(j, "seed") == 9);
            done = 1;
            cJSON_Delete(j);
        }
    }
    assert_int_equal(frames, 4);
    assert_true(done);
    /* the streamed chains, run 5 steps at a time, are the chains of one 14-step run */
    resp s = post("/api/sample", "{\"n\": 4, \"steps\": 14, \"seed\": 9}");
    cJSON *js = expect_json(&s, "sample for comparison");
    assert_string_equal(str(last, "image"), str(js, "image"));
    float E[4], x[4 * D];
    expected_samples(0, 4, 14, 9, x, E);
    check_energies(last, E, 4, "last frame energies");
    printf("  4 frames (steps 0, 5, 10, 14) + done; the last equals /api/sample's grid\n");
    cJSON_Delete(js);
    cJSON_Delete(last);
    resp_free(&r);
}

static void test_bad_chain_queries_get_400_json_not_a_stream(void **state) {
    static const struct {
        const char *query, *want;
    } cases[] = {
        {"every=0", "every must be an integer from 1"},
        {"eps=nan", "eps must be a finite number"},
        {"eps=inf", "eps must be a finite number"},
        {"n=17", "n must be an integer from 1 to 16"},
        {"n=abc", "n must be a number, got 'abc'"},
        {"n=", "n must be a number"},
        {"steps=1000&every=1", "more than 101"},
        {"foo=1", "unknown parameter 'foo'"},
        {"n=1&n=2", "parameter 'n' given twice"},
        {"model=nope", "unknown model"},
        {"digit=1", "not class-conditional"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/chain?%s", cases[i].query);
        resp r = get(path);
        expect_error(&r, 400, cases[i].want, path);
    }
}

/* ---- /api/energy and /api/complete -------------------------------------------------- */

static void test_energy_matches_the_network_and_probs_sum_to_one(void **state) {
    float x[D], e;
    for (int k = 0; k < D; k++) x[k] = drawing(k);
    char body[BODY_CAP] = "{";
    add_image(body, "pixels", drawing);
    strcat(body, "}");
    resp r = post("/api/energy", body);
    cJSON *j = expect_json(&r, "energy");
    assert_int_equal(net_energy(refs[0], x, 1, NULL, &e, NULL), EBM_STATUS_OK);
    float got = (float)number(j, "energy");
    tu_check_close("energy of the drawing", &got, &e, 1, 1e-6, 1e-5);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "probs")); /* unconditional: no p(y|x) */
    cJSON_Delete(j);

    strcpy(body, "{");
    add_image(body, "pixels", drawing);
    strcat(body, ", \"model\": \"cond\"}");
    r = post("/api/energy", body);
    j = expect_json(&r, "energy cond");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "probs");
    assert_int_equal(cJSON_GetArraySize(p), 10);
    double sum = 0;
    for (int k = 0; k < 10; k++) sum += cJSON_GetArrayItem(p, k)->valuedouble;
    printf("  conditional: sum p(y|x) = %.7f\n", sum);
    assert_true(fabs(sum - 1) < 1e-5);
    assert_int_equal(net_energy(refs[1], x, 1, NULL, &e, NULL), EBM_STATUS_OK); /* -logsumexp */
    got = (float)number(j, "energy");
    tu_check_close("E(x) = -logsumexp f(x)", &got, &e, 1, 1e-6, 1e-5);
    cJSON_Delete(j);
}

static float zero(int i) { return 0.f; }
static float two(int i) { return i == 300 ? 2.f : 0.f; }

/* POSTs {image(key, v) + extra} to path and checks the error. */
static void post_image_error(const char *path, const char *key, float (*v)(int), const char *extra, const char *want,
                             const char *what) {
    char body[BODY_CAP] = "{";
    add_image(body, key, v);
    strcat(body, extra);
    strcat(body, "}");
    resp r = post(path, body);
    expect_error(&r, 400, want, what);
}

static void test_bad_images_get_400(void **state) {
    resp r = post("/api/energy", "{\"pixels\": [0, 0, 0]}");
    expect_error(&r, 400, "exactly 784 values", "3 pixels");
    char body[BODY_CAP] = "{";
    add_image(body, "pixels", zero);
    strcpy(strstr(body, ",0.0000]"), "]}"); /* drop the last value */
    r = post("/api/energy", body);
    expect_error(&r, 400, "got 783", "783 pixels");
    post_image_error("/api/energy", "pixels", zero, ", \"extra\": 1", "unknown parameter 'extra'", "extra key");
    post_image_error("/api/energy", "pixels", two, "", "pixels[300] must be a number from -1 to 1", "pixel out of range");
    r = post("/api/energy", "{\"pixels\": \"zeros\"}");
    expect_error(&r, 400, "must be an array", "pixels not an array");
    r = post("/api/energy", "{}");
    expect_error(&r, 400, "pixels is required", "no pixels");
    post_image_error("/api/complete", "pixels", zero, "", "mask is required for mode inpaint", "inpaint without mask");
    post_image_error("/api/complete", "pixels", zero, ", \"mask\": [1, 0]", "mask must be an array of exactly 784",
                     "short mask");
    strcpy(body, "{");
    add_image(body, "pixels", zero);
    add_image(body, "mask", two);
    strcat(body, "}");
    r = post("/api/complete", body);
    expect_error(&r, 400, "mask[300] must be 0 or 1", "mask value 2");
    post_image_error("/api/complete", "pixels", zero, ", \"mode\": \"blur\"", "mode must be denoise or inpaint",
                     "bad mode");
    post_image_error("/api/complete", "mask", zero, ", \"mode\": \"denoise\", \"pixels\": [0]",
                     "pixels must hold exactly 784", "denoise with 1 pixel");
}

static float top_half(int i) { return i < D / 2 ? 1.f : 0.f; }

static void test_complete_inpaint_keeps_the_kept_pixels_and_denoise_starts_from_the_drawing(void **state) {
    /* inpaint, top half kept: those pixels come back exactly; the rest is the model's */
    char body[BODY_CAP] = "{";
    add_image(body, "pixels", drawing);
    add_image(body, "mask", top_half);
    strcat(body, ", \"n\": 3, \"steps\": 15, \"scale\": 1}");
    resp r = post("/api/complete", body);
    cJSON *j = expect_json(&r, "inpaint");
    assert_string_equal(str(j, "mode"), "inpaint");
    size_t len;
    unsigned char *png = data_url_png(str(j, "image"), &len);
    int W, H, changed = 0;
    unsigned char *px = png_gray(png, len, &W, &H);
    assert_true(W == 3 * 30 - 2 && H == 28);
    float x[D];
    unsigned char want[D];
    for (int k = 0; k < D; k++) x[k] = drawing(k);
    image_to_u8(want, x, D);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < D; k++) {
            unsigned char v = px[(k / 28) * W + c * 30 + k % 28];
            if (k < D / 2) assert_int_equal(v, want[k]);
            else changed += v != want[k];
        }
    printf("  inpaint: top halves kept exactly, %d of %d free pixels drawn by the model\n", changed, 3 * D / 2);
    assert_true(changed > D / 2);
    cJSON_Delete(j);
    free(png), free(px);

    /* denoise with 0 steps gives back the drawing itself, with its energy */
    strcpy(body, "{");
    add_image(body, "pixels", drawing);
    strcat(body, ", \"mode\": \"denoise\", \"n\": 1, \"steps\": 0, \"scale\": 1}");
    r = post("/api/complete", body);
    j = expect_json(&r, "denoise");
    png = data_url_png(str(j, "image"), &len);
    px = png_gray(png, len, &W, &H);
    assert_true(W == 28 && H == 28);
    assert_memory_equal(px, want, D);
    float e, got = (float)number(j, "input_energy");
    assert_int_equal(net_energy(refs[0], x, 1, NULL, &e, NULL), EBM_STATUS_OK);
    tu_check_close("input energy", &got, &e, 1, 1e-6, 1e-5);
    cJSON_Delete(j);
    free(png), free(px);
}

/* ---- limits ------------------------------------------------------------------------- */

static void test_ten_megabyte_bodies_get_413_and_the_server_stays_up(void **state) {
    /* declared length: answered from the headers, the body is never read */
    int fd = dial(port);
    char head[256];
    snprintf(head, sizeof head, "POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Content-Length: 10485760\r\n\r\n");
    send_all(fd, head, strlen(head));
    size_t n;
    char *raw = read_all(fd, &n);
    close(fd);
    resp r = parse(raw, n);
    expect_error(&r, 413, "over the limit of 65536 bytes", "10 MB, Content-Length");
    /* no declared length (chunked): read past the cap, dropped, then 413 */
    fd = dial(port);
    snprintf(head, sizeof head, "POST /api/energy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n");
    send_all(fd, head, strlen(head));
    static char chunk[65536 + 16];
    int k = snprintf(chunk, sizeof chunk, "10000\r\n");
    memset(chunk + k, ' ', 65536);
    memcpy(chunk + k + 65536, "\r\n", 2);
    for (int i = 0; i < 160; i++) send_all(fd, chunk, (size_t)k + 65536 + 2); /* 10 MB */
    send_all(fd, "0\r\n\r\n", 5);
    raw = read_all(fd, &n);
    close(fd);
    r = parse(raw, n);
    expect_error(&r, 413, "over the limit", "10 MB, chunked");
    r = get("/api/models");
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_idle_connection_is_closed_after_the_timeout(void **state) {
    int fd = dial(port);
    send_all(fd, "GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\n", 43); /* headers never finished */
    double t0 = ebm_now();
    char buf[256];
    ssize_t k = recv(fd, buf, sizeof buf, 0); /* blocks until the server gives up (timeout 2 s) */
    double dt = ebm_now() - t0;
    close(fd);
    printf("  idle connection closed after %.2f s (recv %zd)\n", dt, k);
    assert_true(k <= 0 && dt >= 1.0 && dt < 10.0);
    resp r = get("/api/models");
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

typedef struct {
    int id, ok;
} worker;

static void *hammer(void *arg) {
    worker *w = arg;
    char body[128];
    snprintf(body, sizeof body, "{\"n\": 3, \"steps\": 8, \"seed\": %d}", 100 + w->id);
    w->ok = 1;
    for (int rep = 0; rep < 3; rep++) {
        resp r = post("/api/sample", body);
        cJSON *j = cJSON_Parse(r.body);
        float x[3 * D], E[3], got[3];
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "energies");
        if (r.status != 200 || cJSON_GetArraySize(arr) != 3) {
            w->ok = 0;
        } else {
            static pthread_mutex_t ref_lock = PTHREAD_MUTEX_INITIALIZER; /* refs[0] is not shared-safe */
            pthread_mutex_lock(&ref_lock);
            expected_samples(0, 3, 8, (uint64_t)(100 + w->id), x, E);
            pthread_mutex_unlock(&ref_lock);
            for (int i = 0; i < 3; i++) got[i] = (float)cJSON_GetArrayItem(arr, i)->valuedouble;
            for (int i = 0; i < 3; i++) w->ok &= fabsf(got[i] - E[i]) <= 1e-5f * (1e-6f + fabsf(E[i])) + 1e-6f;
        }
        cJSON_Delete(j);
        resp_free(&r);
        char eb[BODY_CAP] = "{";
        add_image(eb, "pixels", drawing);
        strcat(eb, w->id % 2 ? ", \"model\": \"cond\"}" : "}");
        r = post("/api/energy", eb);
        w->ok &= r.status == 200;
        resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_requests_get_the_answers_of_sequential_ones(void **state) {
    enum { T = 6 };
    pthread_t th[T];
    worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker){i, 0};
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
    }
    printf("  %d threads x 3 x (sample + energy): %d threads all correct\n", T, ok);
    assert_int_equal(ok, T);
}

static void test_compute_beyond_max_busy_gets_503_until_a_stream_ends(void **state) {
    server_config c = config();
    c.max_busy = 1;
    server *s2;
    assert_int_equal(server_start(&c, &s2), EBM_STATUS_OK);
    int p2 = server_port(s2);
    /* a long stream that we do not read holds the only compute slot */
    int fd = dial(p2);
    const char *req = "GET /api/chain?n=16&steps=1000&every=10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[64];
    assert_true(recv(fd, buf, sizeof buf, 0) > 0); /* the stream has started */
    resp r = request_to(p2, "POST", "/api/sample", "Content-Type: application/json\r\n", "{\"n\": 1, \"steps\": 1}", 20);
    assert_non_null(strcasestr(r.head, "retry-after: 1"));
    expect_error(&r, 503, "server busy", "second compute request");
    r = request_to(p2, "GET", "/api/models", NULL, NULL, 0); /* no compute: still answered */
    assert_int_equal(r.status, 200);
    resp_free(&r);
    close(fd); /* the client leaves: the stream stops and frees its slot */
    double t0 = ebm_now();
    for (;;) {
        r = request_to(p2, "POST", "/api/sample", "Content-Type: application/json\r\n", "{\"n\": 1, \"steps\": 1}", 20);
        int st = r.status;
        resp_free(&r);
        if (st == 200) break;
        if (ebm_now() - t0 > 20) fail_msg("the slot of an abandoned stream was not freed");
        usleep(50000);
    }
    printf("  slot freed %.2f s after the client left\n", ebm_now() - t0);
    server_stop(s2);
}

static void test_start_refuses_a_busy_port_and_a_bad_host(void **state) {
    server_config c = config();
    c.port = port;
    server *s2 = NULL;
    assert_int_equal(server_start(&c, &s2), EBM_STATUS_IO);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "Address already in use"));
    c.port = 0;
    c.host = "no.such.host.invalid";
    assert_int_equal(server_start(&c, &s2), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--host"));
    assert_null(s2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_and_assets_come_from_the_binary),
        cmocka_unit_test(test_unknown_paths_and_traversal_get_404),
        cmocka_unit_test(test_wrong_method_content_type_and_host_are_refused),
        cmocka_unit_test(test_models_lists_each_model_with_defaults_and_limits),
        cmocka_unit_test(test_metrics_gives_the_log_columns_and_the_sample_grid),
        cmocka_unit_test(test_sample_png_is_the_documented_langevin_result),
        cmocka_unit_test(test_sample_json_has_energies_grid_and_settings),
        cmocka_unit_test(test_sample_seeds_mala_and_digits),
        cmocka_unit_test(test_bad_sample_parameters_get_400_naming_them),
        cmocka_unit_test(test_chain_streams_frames_that_end_where_sample_ends),
        cmocka_unit_test(test_bad_chain_queries_get_400_json_not_a_stream),
        cmocka_unit_test(test_energy_matches_the_network_and_probs_sum_to_one),
        cmocka_unit_test(test_bad_images_get_400),
        cmocka_unit_test(test_complete_inpaint_keeps_the_kept_pixels_and_denoise_starts_from_the_drawing),
        cmocka_unit_test(test_ten_megabyte_bodies_get_413_and_the_server_stays_up),
        cmocka_unit_test(test_idle_connection_is_closed_after_the_timeout),
        cmocka_unit_test(test_concurrent_requests_get_the_answers_of_sequential_ones),
        cmocka_unit_test(test_compute_beyond_max_busy_gets_503_until_a_stream_ends),
        cmocka_unit_test(test_start_refuses_a_busy_port_and_a_bad_host),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
