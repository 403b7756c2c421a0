/* assets.h - the web page of `ebm serve` (the files in web/), compiled into the binary by
 * src/server/embed.sh (a Makefile rule), so the server needs no files at run time and
 * serves nothing from the disk: only these paths exist. */
#ifndef EBM_ASSETS_H
#define EBM_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* "/index.html" */
    const char *content_type;  /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const int web_nassets;

#endif
