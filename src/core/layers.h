/* layers.h - the network's building blocks as forward/backward pairs on raw float*.
 *
 * Layout: activations are NHWC (batch, height, width, channels), batch-major, so a slice
 * of the batch is contiguous and a conv output of a GEMM [B*Ho*Wo, Cout] is NHWC as is.
 * Weights keep PyTorch's layout (conv [Cout, Cin, K, K], dense [Out, In]) so checkpoints
 * load into torch.nn unchanged; im2col orders its columns (ci, kh, kw) to match.
 *
 * Gradient rule (as in llm.c): parameter gradients ACCUMULATE (+=) and are cleared by
 * one memset of the gradient buffer; input gradients are written (=).  Any gradient
 * pointer may be NULL to skip that work (Langevin needs dE/dx only).
 *
 * Argument order: outputs, caches/workspace, inputs, weights, dimensions. */
#ifndef EBM_LAYERS_H
#define EBM_LAYERS_H

/* Output size of a convolution along one axis. */
static inline int conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

/* Workspace floats conv2d needs for B images (the im2col matrix). */
long conv2d_workspace(int B, int Ho, int Wo, int Cin, int K);

void conv2d_forward(float *out, float *cols,
                    const float *inp, const float *w, const float *b,
                    int B, int H, int W, int Cin, int Cout, int K, int stride, int pad);
    /* inp (B,H,W,Cin); out (B,Ho,Wo,Cout); w (Cout,Cin,K,K); b (Cout);
     * cols: workspace of conv2d_workspace() floats; on return holds im2col(inp), which
     * conv2d_backward may reuse when cols_valid is set. */

void conv2d_backward(float *dinp, float *dw, float *db, float *cols,
                     const float *dout, const float *inp, const float *w,
                     int B, int H, int W, int Cin, int Cout, int K, int stride, int pad, int cols_valid);
    /* dout (B,Ho,Wo,Cout); dinp (B,H,W,Cin) written (=), may be NULL;
     * dw (Cout,Cin,K,K) and db (Cout) accumulated (+=), may be NULL. */

/* The same convolution with weights in (Cout, K, K, Cin) order ("hwc"): im2col then copies
 * whole NHWC pixel vectors instead of scattering single floats, and where it measures
 * faster the layer convolves directly, without an im2col matrix (docs/PERF.md).  So
 * conv2d_forward_hwc may leave anything in cols: call conv2d_backward_hwc with cols_valid
 * 0.  The network keeps an hwc copy of each conv weight (conv2d_weight_to_hwc) and folds
 * hwc gradients back into PyTorch's layout (conv2d_grad_from_hwc_add, +=).  Same workspace
 * size (conv2d_workspace) for both layouts. */
void conv2d_forward_hwc(float *out, float *cols, const float *inp, const float *w_hwc, const float *b, int B,
                        int H, int W, int Cin, int Cout, int K, int stride, int pad);
void conv2d_backward_hwc(float *dinp, float *dw_hwc, float *db, float *cols, const float *dout,
                         const float *inp, const float *w_hwc, int B, int H, int W, int Cin, int Cout, int K,
                         int stride, int pad, int cols_valid);
void conv2d_weight_to_hwc(float *w_hwc, const float *w, int Cout, int Cin, int K);
void conv2d_grad_from_hwc_add(float *dw, const float *dw_hwc, int Cout, int Cin, int K);

void dense_forward(float *out, const float *inp, const float *w, const float *b, int B, int In, int Out);
    /* inp (B,In); out (B,Out); w (Out,In); b (Out) */
void dense_backward(float *dinp, float *dw, float *db,
                    const float *dout, const float *inp, const float *w, int B, int In, int Out);

void swish_forward(float *out, const float *inp, long n);                 /* x*sigmoid(x) */
void swish_backward(float *dinp, const float *dout, const float *inp, long n);
/* Swish that also keeps its local derivative dact = s + x s (1 - s), so a backward pass that
 * needs only input gradients (Langevin) is one multiply: mul_backward (dinp = dout * dact).
 * dact may alias inp (element i is read before it is written). */
void swish_forward_grad(float *out, float *dact, const float *inp, long n);
void mul_backward(float *dinp, const float *dout, const float *dact, long n);
void leakyrelu_forward(float *out, const float *inp, long n, float slope);
void leakyrelu_backward(float *dinp, const float *dout, const float *inp, long n, float slope);

/* Flatten NHWC activations in PyTorch's (C,H,W) order, so dense weights match torch. */
void flatten_forward(float *out, const float *inp, int B, int H, int W, int C);
void flatten_backward(float *dinp, const float *dout, int B, int H, int W, int C);

#endif
