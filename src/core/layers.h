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

void dense_forward(float *out, const float *inp, const float *w, const float *b, int B, int In, int Out);
    /* inp (B,In); out (B,Out); w (Out,In); b (Out) */
void dense_backward(float *dinp, float *dw, float *db,
                    const float *dout, const float *inp, const float *w, int B, int In, int Out);

void swish_forward(float *out, const float *inp, long n);                 /* x*sigmoid(x) */
void swish_backward(float *dinp, const float *dout, const float *inp, long n);
void leakyrelu_forward(float *out, const float *inp, long n, float slope);
void leakyrelu_backward(float *dinp, const float *dout, const float *inp, long n, float slope);

/* Flatten NHWC activations in PyTorch's (C,H,W) order, so dense weights match torch. */
void flatten_forward(float *out, const float *inp, int B, int H, int W, int C);
void flatten_backward(float *dinp, const float *dout, int B, int H, int W, int C);

#endif
