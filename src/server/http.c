/* http.c - the HTTP side of `ebm serve` (server.h) on libmicrohttpd: the listening
 * socket, routing (a fixed table: the embedded page and the API, nothing from the disk, so
 * no path can reach a file), body and connection limits, response headers, the access
 * log, and Server-Sent Events for chain streams.
 *
 * libmicrohttpd calls on_request several times per request: first with the headers (we
 * check route, method, Host, content type and declared length here and may answer at once,
 * which makes it skip the body), then with pieces of the body, then with none (we answer). */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "assets.h"
#include "core/common.h"
#include "params.h"

/* A body sent without a declared length is read (and dropped) past API_MAX_BODY up to
 * this many bytes, so that the client gets its 413; beyond, the connection is cut. */
#define DRAIN_MAX (16L << 20)
#define SSE_BLOCK (32 * 1024)

typedef void (*handler_fn)(api_ctx *a, const cJSON *params, int query, api_response *r);

typedef struct {
    const char *path, *method;
    handler_fn fn;
} route;

static const route routes[] = {
    {"/api/models", "GET", api_models},  {"/api/metrics", "GET", api_metrics},
    {"/api/chain", "GET", api_chain},    {"/api/sample", "POST", api_sample},
    {"/api/energy", "POST", api_energy}, {"/api/complete", "POST", api_complete},
};
#define NROUTES ((int)(sizeof routes / sizeof routes[0]))

/* The page may load only itself: no inline script, no other origin (images are data: URLs). */
static const char page_csp[] = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

struct server {
    struct MHD_Daemon *d;
    server_config c;
    api_ctx *api;
    int port;
    int loopback; /* bound to a loopback address: requests must name a loopback Host */
};

typedef struct {
    const route *r;
    char *body;
    size_t len;
    long drained; /* bytes dropped past the cap */
    int too_big;
    int status;
    double t0;
    char method[8], path[64];
} request;

typedef struct {
    api_stream *st;
    const char *data;
    size_t len, off;
} sse_state;

/* ---- responses ---------------------------------------------------------------------- */

static void common_headers(struct MHD_Response *resp, const char *type) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    sse_state *e = cls;
    if (e->off == e->len) {
        if (!api_stream_next(e->st, &e->data, &e->len)) return MHD_CONTENT_READER_END_OF_STREAM;
        e->off = 0;
    }
    size_t k = e->len - e->off < max ? e->len - e->off : max;
    memcpy(buf, e->data + e->off, k);
    e->off += k;
    return (ssize_t)k;
}

/* Also called when the client goes away mid-stream: the chains stop there. */
static void sse_free(void *cls) {
    sse_state *e = cls;
    api_stream_free(e->st);
    free(e);
}

static struct MHD_Response *make_response(api_response *r) {
    if (!r->stream) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (!resp) free(r->body);
        return resp;
    }
    sse_state *e = calloc(1, sizeof *e);
    if (!e) {
        api_stream_free(r->stream);
        return NULL;
    }
    e->st = r->stream;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_read, e, sse_free);
    if (!resp) sse_free(e);
    return resp;
}

static enum MHD_Result queue(struct MHD_Connection *conn, request *q, api_response *r, const char *allow) {
    struct MHD_Response *resp = make_response(r);
    if (!resp) return MHD_NO;
    common_headers(resp, r->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, r->stream ? "no-cache" : "no-store");
    if (r->stream) MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: do not hold frames */
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (r->retry_after) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    q->status = r->status;
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

__attribute__((format(printf, 5, 6))) static enum MHD_Result queue_error(struct MHD_Connection *conn, request *q,
                                                                          int status, const char *allow,
                                                                          const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_response r = {0};
    api_error(&r, status, "%s", msg);
    return queue(conn, q, &r, allow);
}

static enum MHD_Result queue_asset(struct MHD_Connection *conn, request *q, const web_asset *a) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    common_headers(resp, a->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (strncmp(a->content_type, "text/html", 9) == 0) {
        MHD_add_response_header(resp, "Content-Security-Policy", page_csp);
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    }
    q->status = 200;
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* ---- request checks ----------------------------------------------------------------- */

/* Whether the Host header names this machine (localhost, 127.x.y.z, [::1]); requests
 * without one (HTTP/1.0) pass.  Guards a loopback server against DNS rebinding: a web
 * page elsewhere cannot make the browser talk to it under another name. */
static int host_ok(struct MHD_Connection *conn) {
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (!h) return 1;
    char name[256];
    size_t k = 0;
    if (h[0] == '[') {
        const char *end = strchr(h, ']');
        if (!end || (size_t)(end - h - 1) >= sizeof name) return 0;
        k = (size_t)(end - h - 1);
        memcpy(name, h + 1, k);
    } else {
        while (h[k] && h[k] != ':' && k + 1 < sizeof name) name[k] = h[k], k++;
    }
    name[k] = 0;
    if (strcasecmp(name, "localhost") == 0 || strcmp(name, "::1") == 0) return 1;
    struct in_addr a;
    return inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static int is_json(struct MHD_Connection *conn) {
    const char *t = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!t) return 0;
    size_t n = strlen("application/json");
    return strncasecmp(t, "application/json", n) == 0 && (t[n] == 0 || t[n] == ';' || t[n] == ' ');
}

typedef struct {
    cJSON *obj;
    char err[API_ERR_LEN];
} query_args;

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    query_args *qa = cls;
    if (qa->err[0]) return MHD_NO;
    if (cJSON_GetObjectItemCaseSensitive(qa->obj, key)) {
        snprintf(qa->err, sizeof qa->err, "parameter '%.40s' given twice", key);
        return MHD_NO;
    }
    if (!cJSON_AddStringToObject(qa->obj, key, value ? value : "")) {
        snprintf(qa->err, sizeof qa->err, "out of memory");
        return MHD_NO;
    }
    return MHD_YES;
}

/* ---- dispatch ----------------------------------------------------------------------- */

static enum MHD_Result run_get(server *s, struct MHD_Connection *conn, request *q) {
    query_args qa = {cJSON_CreateObject(), ""};
    if (!qa.obj) return queue_error(conn, q, 503, NULL, "out of memory");
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &qa);
    if (qa.err[0]) {
        cJSON_Delete(qa.obj);
        return queue_error(conn, q, 400, NULL, "%s", qa.err);
    }
    api_response r = {0};
    q->r->fn(s->api, qa.obj, 1, &r);
    cJSON_Delete(qa.obj);
    return queue(conn, q, &r, NULL);
}

static enum MHD_Result run_post(server *s, struct MHD_Connection *conn, request *q) {
    char err[API_ERR_LEN];
    cJSON *body = params_parse_body(q->body, q->len, err);
    if (!body) return queue_error(conn, q, 400, NULL, "%s", err);
    api_response r = {0};
    q->r->fn(s->api, body, 0, &r);
    cJSON_Delete(body);
    return queue(conn, q, &r, NULL);
}

/* The first call, with the headers only. */
static enum MHD_Result on_headers(server *s, struct MHD_Connection *conn, const char *url, const char *method,
                                  request *q) {
    if (s->loopback && !host_ok(conn))
        return queue_error(conn, q, 403, NULL,
                           "this server listens on a loopback address and answers only to localhost, 127.0.0.1 or "
                           "[::1] (start it with --host to serve other names)");
    const char *path = strcmp(url, "/") == 0 ? "/index.html" : url;
    for (int i = 0; i < web_nassets; i++)
        if (strcmp(path, web_assets[i].path) == 0) {
            if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return queue_error(conn, q, 405, "GET, HEAD", "%s %s: the page is read with GET", method, url);
            return queue_asset(conn, q, &web_assets[i]);
        }
    for (int i = 0; i < NROUTES; i++)
        if (strcmp(url, routes[i].path) == 0) q->r = &routes[i];
    if (!q->r)
        return queue_error(conn, q, 404, NULL, "no such page or endpoint: %.80s (the API is under /api/; see docs/API.md)",
                           url);
    if (strcmp(method, q->r->method) != 0)
        return queue_error(conn, q, 405, q->r->method, "%s takes %s, not %.10s", q->r->path, q->r->method, method);
    if (strcmp(method, "GET") == 0) return run_get(s, conn, q);
    if (!is_json(conn))
        return queue_error(conn, q, 415, NULL,
                           "%s takes a JSON body: send the header Content-Type: application/json (curl --json '{...}')",
                           q->r->path);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY)
        return queue_error(conn, q, 413, NULL, "request body of %s bytes is over the limit of %d bytes", cl,
                           API_MAX_BODY);
    return MHD_YES; /* read the body */
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *s = cls;
    request *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q) return MHD_NO;
        q->t0 = ebm_now();
        snprintf(q->method, sizeof q->method, "%s", method);
        snprintf(q->path, sizeof q->path, "%s", url);
        *con_cls = q;
        return on_headers(s, conn, url, method, q);
    }
    if (*upload_size) {
        size_t k = *upload_size;
        *upload_size = 0;
        if (!q->too_big && q->len + k <= API_MAX_BODY) {
            char *b = realloc(q->body, q->len + k);
            if (!b) return MHD_NO;
            memcpy(b + q->len, upload, k);
            q->body = b;
            q->len += k;
            return MHD_YES;
        }
        q->too_big = 1; /* keep reading so that the client sees the 413, within reason */
        q->drained += (long)k;
        return q->drained > DRAIN_MAX ? MHD_NO : MHD_YES;
    }
    if (q->too_big)
        return queue_error(conn, q, 413, NULL, "request body over the limit of %d bytes", API_MAX_BODY);
    return run_post(s, conn, q);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    server *s = cls;
    request *q = *con_cls;
    if (!q) return;
    if (!s->c.quiet) {
        const char *why = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                          : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)"
                          : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client left)"
                          : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (shutdown)"
                                                                           : " (aborted)";
        fprintf(stderr, "%s %s %d %.3fs%s\n", q->method, q->path, q->status, ebm_now() - q->t0, why);
    }
    free(q->body);
    free(q);
    *con_cls = NULL;
}

/* libmicrohttpd's %XX decoding, except that a path or argument with %00 is left as sent:
 * decoded, the NUL would cut the C string ("/app.js%00.png" would read "/app.js"). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s) {
    (void)cls, (void)conn;
    if (strstr(s, "%00")) return strlen(s);
    return MHD_http_unescape(s);
}

static void on_log(void *cls, const char *fmt, va_list ap) {
    server *s = cls;
    if (s->c.quiet) return;
    fputs("ebm serve: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- life cycle --------------------------------------------------------------------- */

server_config server_config_default(void) {
    server_config c = {"127.0.0.1", 8080, NULL, 0, NULL, NULL, 30, 64, 16, 0};
    return c;
}

/* Binds and listens on host:port: the socket in *fd. */
static ebm_status listen_on(const char *host, int port, int *fd_out, int *loopback, int *v6) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--host %s: %s (give an address such as 127.0.0.1, ::1 or 0.0.0.0)",
                        host, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, err = errno;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* restart despite TIME_WAIT */
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    ebm_status st = EBM_STATUS_OK;
    if (fd < 0) {
        st = ebm_fail(EBM_STATUS_IO, "cannot listen on %s port %d: %s%s", host, port, strerror(err),
                 err == EADDRINUSE ? " (another program uses it: pick another --port, or --port 0 for any free one)"
                 : err == EACCES   ? " (ports below 1024 need root: use --port 8080)"
                                   : "");
    } else if (res->ai_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
        *v6 = 1;
        *loopback = IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    } else {
        *v6 = 0;
        *loopback = (ntohl(((const struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr) >> 24) == 127;
    }
    freeaddrinfo(res);
    *fd_out = fd;
    return st;
}

ebm_status server_start(const server_config *c, server **out) {
    EBM_ASSERT(c && out && c->models && c->nmodels > 0);
    *out = NULL;
    if (c->port < 0 || c->port > 65535) return ebm_fail(EBM_STATUS_BAD_ARG, "--port %d: use 0..65535", c->port);
    if (c->timeout_s < 1 || c->max_connections < 1 || c->max_busy < 1)
        return ebm_fail(EBM_STATUS_BAD_ARG, "server limits must be >= 1 (timeout %d s, %d connections, %d busy)",
                        c->timeout_s, c->max_connections, c->max_busy);
    server *s = calloc(1, sizeof *s);
    if (!s) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    s->c = *c;
    s->api = api_create(&s->c);
    if (!s->api) {
        free(s);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    }
    int v6 = 0, fd = -1;
    ebm_status st = listen_on(c->host, c->port, &fd, &s->loopback, &v6);
    if (st != EBM_STATUS_OK) {
        api_free(s->api);
        free(s);
        return st;
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
                            MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
                            MHD_OPTION_END);
    if (!s->d) {
        close(fd);
        api_free(s->api);
        free(s);
        return ebm_fail(EBM_STATUS_IO, "libmicrohttpd could not start on %s port %d", c->host, c->port);
    }
    *out = s;
    return EBM_STATUS_OK;
}

int server_port(const server *s) { return s->port; }

void server_stop(server *s) {
    if (!s) return;
    MHD_stop_daemon(s->d); /* joins every connection thread; closes the listening socket */
    api_free(s->api);
    free(s);
}
