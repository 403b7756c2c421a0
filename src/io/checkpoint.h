/* checkpoint.h - models and training checkpoints as safetensors files.
 *
 * A file holds the network's tensors under the names torch.nn.Sequential gives them
 * ("0.weight", "0.bias", ...; conv [Cout,Cin,K,K], dense [Out,In]), optionally more tensors
 * (a training checkpoint adds "adam.m", "adam.v" and "buffer"), and __metadata__ with at
 * least: format ("ebm-model" or "ebm-checkpoint"), spec (the canonical architecture),
 * data_range ("[-1,1]"), energy ("E(x) = -f(x)" ...), ebm_version and created (UTC).
 * So `safetensors.torch.load_file(path)` gives a state dict for the peer's nn.Sequential
 * (filter out the non-numeric-prefixed keys of a training checkpoint), and any file ebm
 * writes loads as a plain model for sampling. */
#ifndef EBM_CHECKPOINT_H
#define EBM_CHECKPOINT_H

#include <stdint.h>

#include "ebm.h"
#include "safetensors.h"
#include "../core/net.h"

#define CKPT_FORMAT_MODEL "ebm-model"
#define CKPT_FORMAT_TRAIN "ebm-checkpoint"
#define CKPT_DATA_RANGE "[-1,1]"

typedef struct {
    const char *name;
    const float *data;     /* borrowed until ckpt_save returns */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} ckpt_tensor;

typedef struct {
    const char *key, *value;
} ckpt_meta;

/* Writes path atomically: the net's parameters, then extra tensors, then the standard
 * metadata (format = `format`) followed by meta (keys must not repeat the standard ones). */
ebm_status ckpt_save(const char *path, const net *n, const char *format, const ckpt_tensor *extra, int nextra,
                     const ckpt_meta *meta, int nmeta);

/* Reads and checks the file (st_read) and that it has tensors of a model. */
ebm_status ckpt_open(const char *path, st_file *f);
/* Builds the network the file describes (metadata "spec"; a file without it, such as one
 * saved from PyTorch, is tried as "cnn-small") and loads its parameters. */
ebm_status ckpt_load_net(const st_file *f, uint64_t seed, net **out);
/* Loads parameters into an existing net; a different architecture is BAD_FILE with both
 * specs (or the first tensor whose shape differs) in the message. */
ebm_status ckpt_load_params(const st_file *f, net *n);
/* Shorthand: open, build, load, close. */
ebm_status ckpt_load_model(const char *path, net **out);

/* Metadata value or NULL. */
const char *ckpt_meta_get(const st_file *f, const char *key);

#endif
