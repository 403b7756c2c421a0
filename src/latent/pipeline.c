/* pipeline.c - loading a run's pair of files and generating images (see pipeline.h). */
#include "pipeline.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/common.h"
#include "latent_train.h"

ebm_status latent_pipeline_load(const char *dir, const char *ae_path, const char *ebm_path, int max_batch,
                                latent_pipeline *p) {
    memset(p, 0, sizeof *p);
    char a[4096], e[4096];
    snprintf(a, sizeof a, "%s/%s", dir, LATENT_AE_FILE);
    snprintf(e, sizeof e, "%s/%s", dir, LATENT_EBM_FILE);
    if (!ae_path) ae_path = a;
    if (!ebm_path) ebm_path = e;
    struct stat st;
    for (int k = 0; k < 2; k++)
        if (stat(k ? ebm_path : ae_path, &st) != 0)
            return ebm_fail(EBM_STATUS_IO,
                            "no latent pipeline in %s: %s is missing; train one with `ebm latent train --out-dir %s` "
                            "or pass --model-dir DIR of a finished run",
                            dir, k ? ebm_path : ae_path, dir);
    EBM_TRY(ae_load(ae_path, max_batch, &p->ae, &p->ai));
    ebm_status s = lebm_load(ebm_path, max_batch, &p->le, &p->li);
    if (s == EBM_STATUS_OK) {
        s = lebm_check_pair(&p->ae, ae_path, &p->le, &p->li, ebm_path);
        if (s != EBM_STATUS_OK) lebm_free(&p->le);
    }
    if (s != EBM_STATUS_OK) ae_free(&p->ae);
    return s;
}

void latent_pipeline_free(latent_pipeline *p) {
    ae_free(&p->ae);
    lebm_free(&p->le);
}

ebm_status latent_pipeline_generate(latent_pipeline *p, int n, int steps, const langevin_params *lv, float *probs,
                                    float *z, langevin_stats *st) {
    float *codes = z ? z : ebm_alloc(sizeof(float) * (size_t)n * p->le.code_dim);
    if (!codes) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d codes", n);
    ebm_status s = lebm_sample(&p->le, n, steps, lv, codes, NULL, st);
    if (s == EBM_STATUS_OK) ae_decode(&p->ae, codes, n, probs);
    if (!z) ebm_free(codes);
    return s;
}
