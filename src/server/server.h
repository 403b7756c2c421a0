/* server.h - the HTTP server of `ebm serve`: the embedded web page and its JSON API
 * (docs/API.md) over one or more loaded models, on libmicrohttpd.
 *
 *   server_model m = {.name = "digits", .n = net, .be = backend, .eps = 10, ...};
 *   server_config c = server_config_default();
 *   c.models = &m; c.nmodels = 1;
 *   server *s;  if (server_start(&c, &s) == EBM_STATUS_OK) { ...; server_stop(s); }
 *
 * Threads: one per connection (libmicrohttpd), at most max_connections.  A model serves
 * one request at a time (a mutex per model); a chain stream holds it only while it
 * computes the next frame, so streams and other requests interleave.  Compute requests
 * beyond max_busy get 503.  A connection idle for timeout_s seconds (a slow or gone
 * client) is closed.  Bodies are capped at API_MAX_BODY (413 beyond).  When bound to a
 * loopback address, requests must name a loopback Host (DNS rebinding). */
#ifndef EBM_SERVER_H
#define EBM_SERVER_H

#include "ebm.h"
#include "../core/net.h"
#include "../train/backend.h"

typedef struct {
    const char *name;       /* how requests choose it ("digits" for digits.safetensors) */
    net *n;                 /* host network: /api/energy runs here */
    train_backend be;       /* runs the Langevin chains (CPU or CUDA) */
    float eps, noise, grad_clip, lo, hi;  /* the sampler it was trained with */
    int steps;              /* default Langevin steps for fresh chains */
    int conditional;        /* trained with labels: requests may ask for a digit */
    uint16_t digits;        /* conditional: the digits it was trained on (bit d), which are the ones
                             * a request may ask for; 0 = every output */
} server_model;

typedef struct {
    const char *host;       /* address to bind ("127.0.0.1", "::1", "0.0.0.0", a name) */
    int port;               /* 0: any free port (server_port says which) */
    const server_model *models;  /* must outlive the server; model 0 is the default */
    int nmodels;
    const char *metrics_path;    /* training log (JSON lines) for /api/metrics, or NULL */
    const char *samples_path;    /* latest sample grid (PNG), or NULL: derived from metrics_path */
    int timeout_s;          /* idle connections are closed after this */
    int max_connections;
    int max_busy;           /* compute requests at once (running or waiting for a model) */
    int quiet;              /* no access log on stderr */
} server_config;

typedef struct server server;

server_config server_config_default(void);
/* Binds and starts serving; BAD_ARG for a bad host, IO when the address cannot be bound
 * (the message says why: in use, permission). */
ebm_status server_start(const server_config *c, server **out);
int server_port(const server *s);
/* Stops accepting, waits for running requests, frees the server (not the models). */
void server_stop(server *s);

#endif
