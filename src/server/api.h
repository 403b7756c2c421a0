/* api.h - the JSON endpoints of `ebm serve` behind the HTTP layer (http.c): each takes
 * checked parameters (params.h) and fills an api_response; none knows about sockets.
 * Documented for users in docs/API.md. */
#ifndef EBM_API_H
#define EBM_API_H

#include <stddef.h>

#include <cJSON.h>

#include "server.h"

typedef struct api_ctx api_ctx;
typedef struct api_stream api_stream;

typedef struct {
    int status;                /* HTTP status */
    const char *content_type;  /* static string */
    char *body;                /* malloc'ed (free()), len bytes; NULL for a stream */
    size_t len;
    api_stream *stream;        /* text/event-stream: events come from api_stream_next */
    int retry_after;           /* seconds, with 503 */
} api_response;

/* The shared state of the endpoints: the models (with a lock each), the busy count and the
 * training log's paths.  c must outlive it. */
api_ctx *api_create(const server_config *c);
void api_free(api_ctx *a);

/* Endpoints.  params: the JSON body (POST) or the query string as an object of strings
 * (query = 1).  GET endpoints without parameters ignore params. */
void api_models(api_ctx *a, const cJSON *params, int query, api_response *r);
void api_metrics(api_ctx *a, const cJSON *params, int query, api_response *r);
void api_sample(api_ctx *a, const cJSON *params, int query, api_response *r);
void api_chain(api_ctx *a, const cJSON *params, int query, api_response *r);
void api_energy(api_ctx *a, const cJSON *params, int query, api_response *r);
void api_complete(api_ctx *a, const cJSON *params, int query, api_response *r);

/* A JSON error reply {"error": "..."} with the given status. */
void api_error(api_response *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Next event of a chain stream ("event: frame\ndata: {...}\n\n"), valid until the next
 * call; 0 when the stream has ended. */
int api_stream_next(api_stream *s, const char **data, size_t *len);
void api_stream_free(api_stream *s);

/* Standard base64 of n bytes into a NUL-terminated malloc'ed string (NULL when out of memory). */
char *api_base64(const unsigned char *src, size_t n);

#endif
