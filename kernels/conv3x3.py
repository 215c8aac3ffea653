"""3×3 convolution (stride 1, zero padding 1) as an implicit GEMM, with the ResBlock epilogues fused.

    y   = conv3×3(x, weight) + bias
    out = y                                   (epilogue "none")
    out = SiLU(y · (scale + 1) + shift)       (epilogue "film_silu": a ResBlock's first conv)
    out = SiLU(y) + residual                  (epilogue "silu_residual": its second conv)

Layout: `x` is the N×H×W×Cin view of a channels-last activation map and `out` (and `residual`)
N×H×W×Cout views, all in one storage dtype (fp32, fp16 or bf16); the weight is packed once
(`pack_conv3x3_weight`) into a [9·Cin, Cout] matrix whose row (kh·3 + kw)·Cin + ci holds tap
(kh, kw) of input channel ci, so the convolution is the GEMM
out[pixel, co] = Σ_k A[pixel, k] · Wp[k, co] with A gathered on the fly from the 3×3
neighbourhood (zero outside the image). `bias`, `scale`, `shift` are fp32 (Cout,) vectors.
Products in the storage dtype with fp32 accumulation (exact fp32 for fp32 storage); the epilogue
in fp32; the result is rounded once to the storage dtype.

Why a kernel: cuDNN's convolution writes y, and the fused backend then reads and writes it again
for FiLM + SiLU (or SiLU + residual, reading the residual too). Here the epilogue runs on the
accumulator in registers: per ResBlock and evaluation that saves two passes over each of the two
activation maps (at 1280×720, nf 64, fp16: 0.47 GB of the level-0 blocks' traffic) and two
launches. Whether the GEMM itself keeps up with cuDNN's is a measurement (benchmarks/conv_bench.py),
not an assumption: the fused backend uses this kernel only when asked (`conv="triton"`).

Two kernels, the same arithmetic:

- `_conv3x3_kernel` (any GPU, any channel count; the interpreter's): a program computes BLOCK_M
  consecutive pixels (flattened over N·H·W) × BLOCK_N output channels, looping once over 9 taps ×
  ⌈Cin / BLOCK_K⌉ channel chunks (one flat loop, so Triton can pipeline the loads), gathering the
  shifted pixels with masked pointer loads. On an H200 it took 1.7× cuDNN's time (docs/PERF.md).
- `_conv3x3_tma_kernel` (Hopper and newer, fp16/bf16, Cin and Cout multiples of 8): a program
  computes a BH×BW pixel tile of one image × BLOCK_N output channels; each (tap, chunk) step is
  one tensor-memory-accelerator copy of the input tile shifted by the tap — the hardware fills
  the zero padding outside the image — and one of the weight tile, straight into shared memory
  for the tensor-core product; the output tile is stored the same way (clipped at the image's
  edge). Unmeasured on a GPU so far.

In both, consecutive programs share the same pixels and walk the output channels, so the input
tile is reused from L2. On a GPU the tile sizes are autotuned per (Cin, Cout[, W]).
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from . import interpreter_enabled
from .checks import check_shape, check_tensor, next_power_of_2

EPILOGUES = {"none": 0, "film_silu": 1, "silu_residual": 2}
IMPLS = ("auto", "pointer", "tma")


@triton.jit
def _bias_film_silu(acc, offs_n, n_mask, bias_ptr, scale_ptr, shift_ptr,
                    HAS_BIAS: tl.constexpr, EPILOGUE: tl.constexpr):
    """Both kernels' epilogue on the fp32 accumulator, up to the residual (which each loads its way)."""
    y = acc
    if HAS_BIAS:
        y += tl.load(bias_ptr + offs_n, mask=n_mask, other=0.0)[None, :]
    if EPILOGUE == 1:
        scale = tl.load(scale_ptr + offs_n, mask=n_mask, other=0.0)
        shift = tl.load(shift_ptr + offs_n, mask=n_mask, other=0.0)
        y = y * (scale[None, :] + 1.0) + shift[None, :]
    if EPILOGUE != 0:
        y = y * tl.sigmoid(y)
    return y


@triton.jit
def _conv3x3_kernel(
    x_ptr,            # *T   [N·H·W, Cin] input pixels, channels contiguous
    w_ptr,            # *T   [9·Cin, Cout] packed weight
    bias_ptr,         # *f32 [Cout] (unused without HAS_BIAS)
    scale_ptr,        # *f32 [Cout] FiLM scale (epilogue film_silu)
    shift_ptr,        # *f32 [Cout] FiLM shift (epilogue film_silu)
    res_ptr,          # *T   [N·H·W, Cout] residual (epilogue silu_residual)
    out_ptr,          # *T   [N·H·W, Cout]
    M, H, W, C_in, C_out,
    HAS_BIAS: tl.constexpr,
    EPILOGUE: tl.constexpr,      # 0 none, 1 film_silu, 2 silu_residual
    IEEE: tl.constexpr,          # fp32 storage: exact fp32 products instead of TF32
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid = tl.program_id(0)
    n_tiles = tl.cdiv(C_out, BLOCK_N)
    pid_m = pid // n_tiles
    pid_n = pid % n_tiles
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    m_mask = offs_m < M
    n_mask = offs_n < C_out
    col = offs_m % W
    row = (offs_m // W) % H

    k_chunks = tl.cdiv(C_in, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i in range(0, 9 * k_chunks):
        tap = i // k_chunks
        ck = (i - tap * k_chunks) * BLOCK_K + offs_k
        dh = tap // 3 - 1
        dw = tap % 3 - 1
        r = row + dh
        c = col + dw
        inside = m_mask & (r >= 0) & (r < H) & (c >= 0) & (c < W)
        src = (offs_m + dh * W + dw).to(tl.int64) * C_in   # the neighbour, same image when inside
        k_mask = ck < C_in
        a = tl.load(x_ptr + src[:, None] + ck[None, :], mask=inside[:, None] & k_mask[None, :], other=0.0)
        b = tl.load(w_ptr + (tap * C_in + ck)[:, None] * C_out + offs_n[None, :],
                    mask=k_mask[:, None] & n_mask[None, :], other=0.0)
        if IEEE:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)

    y = _bias_film_silu(acc, offs_n, n_mask, bias_ptr, scale_ptr, shift_ptr, HAS_BIAS, EPILOGUE)
    dst = offs_m.to(tl.int64)[:, None] * C_out + offs_n[None, :]
    mask = m_mask[:, None] & n_mask[None, :]
    if EPILOGUE == 2:
        y += tl.load(res_ptr + dst, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + dst, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _conv3x3_tma_kernel(
    x_ptr,            # *T   [N, H, W, Cin]
    w_ptr,            # *T   [9·Cin, Cout] packed weight
    bias_ptr,         # *f32 [Cout] (unused without HAS_BIAS)
    scale_ptr,        # *f32 [Cout] FiLM scale (epilogue film_silu)
    shift_ptr,        # *f32 [Cout] FiLM shift (epilogue film_silu)
    res_ptr,          # *T   [N, H, W, Cout] residual (epilogue silu_residual)
    out_ptr,          # *T   [N, H, W, Cout]
    N, H, W, C_in, C_out,
    HAS_BIAS: tl.constexpr,
    EPILOGUE: tl.constexpr,      # 0 none, 1 film_silu, 2 silu_residual
    BH: tl.constexpr,            # pixel tile: BH rows × BW columns of one image
    BW: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    BLOCK_M: tl.constexpr = BH * BW
    pid = tl.program_id(0)
    n_tiles = tl.cdiv(C_out, BLOCK_N)
    pid_n = pid % n_tiles
    pix = pid // n_tiles
    tiles_w = tl.cdiv(W, BW)
    tiles_h = tl.cdiv(H, BH)
    w0 = (pix % tiles_w) * BW
    h0 = ((pix // tiles_w) % tiles_h) * BH
    img = pix // (tiles_w * tiles_h)
    n0 = pid_n * BLOCK_N

    x_desc = tl.make_tensor_descriptor(x_ptr, shape=[N, H, W, C_in], strides=[H * W * C_in, W * C_in, C_in, 1],
                                       block_shape=[1, BH, BW, BLOCK_K])
    w_desc = tl.make_tensor_descriptor(w_ptr, shape=[9 * C_in, C_out], strides=[C_out, 1],
                                       block_shape=[BLOCK_K, BLOCK_N])
    out_desc = tl.make_tensor_descriptor(out_ptr, shape=[N, H, W, C_out], strides=[H * W * C_out, W * C_out, C_out, 1],
                                         block_shape=[1, BH, BW, BLOCK_N])

    # Channels past Cin read as zeros from x (outside the descriptor), so a chunk that overhangs
    # Cin multiplies the next tap's weight rows by 0: no divisibility needed.
    k_chunks = tl.cdiv(C_in, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i in range(0, 9 * k_chunks):
        tap = i // k_chunks
        k0 = (i - tap * k_chunks) * BLOCK_K
        a = x_desc.load([img, h0 + tap // 3 - 1, w0 + tap % 3 - 1, k0]).reshape(BLOCK_M, BLOCK_K)
        b = w_desc.load([tap * C_in + k0, n0])
        acc = tl.dot(a, b, acc)

    offs_n = n0 + tl.arange(0, BLOCK_N)
    n_mask = offs_n < C_out
    y = _bias_film_silu(acc, offs_n, n_mask, bias_ptr, scale_ptr, shift_ptr, HAS_BIAS, EPILOGUE)
    if EPILOGUE == 2:
        res_desc = tl.make_tensor_descriptor(res_ptr, shape=[N, H, W, C_out],
                                             strides=[H * W * C_out, W * C_out, C_out, 1],
                                             block_shape=[1, BH, BW, BLOCK_N])
        y += res_desc.load([img, h0, w0, n0]).reshape(BLOCK_M, BLOCK_N).to(tl.float32)
    out_desc.store([img, h0, w0, n0], y.to(out_ptr.dtype.element_ty).reshape(1, BH, BW, BLOCK_N))


def _tma_configs():
    shapes = [(1, 128, 64, 64, 4, 4), (1, 128, 128, 64, 8, 3), (2, 64, 128, 64, 8, 3), (1, 128, 256, 64, 8, 3),
              (2, 64, 64, 64, 4, 4), (1, 64, 128, 64, 4, 4)]
    return [triton.Config({"BH": bh, "BW": bw, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=s)
            for bh, bw, n, k, w, s in shapes]


def _tma_prune(configs, named_args, **kwargs):
    c_in, c_out, w = named_args["C_in"], named_args["C_out"], named_args["W"]
    kept = [c for c in configs
            if c.kwargs["BW"] <= max(8, next_power_of_2(w))
            and c.kwargs["BLOCK_N"] <= max(16, next_power_of_2(c_out))
            and c.kwargs["BLOCK_K"] <= max(16, next_power_of_2(c_in))]
    return kept or configs[:1]


_conv3x3_tma_tuned = triton.autotune(configs=_tma_configs(), key=["C_in", "C_out", "W"],
                                     prune_configs_by={"early_config_prune": _tma_prune})(_conv3x3_tma_kernel)


def _set_descriptor_allocator() -> None:
    """Device-side tensor descriptors need scratch memory per launch: take it from PyTorch's
    allocator (inside a CUDA-graph capture that is the graph's pool)."""
    def alloc(size: int, alignment: int, stream):
        return torch.empty(size, dtype=torch.int8, device="cuda" if torch.cuda.is_available() else "cpu")

    triton.set_allocator(alloc)


def tma_supported(x: torch.Tensor, c_out: int) -> Optional[str]:
    """None when the TMA kernel can take `x` (N×H×W×Cin) → Cout, else why not."""
    if x.dtype not in (torch.float16, torch.bfloat16):
        return f"dtype {x.dtype} (the TMA kernel takes fp16/bf16)"
    if x.shape[-1] % 8 or c_out % 8:
        return f"Cin = {x.shape[-1]}, Cout = {c_out}: rows must be multiples of 16 bytes (8 channels)"
    if x.is_cuda and not interpreter_enabled() and torch.cuda.get_device_capability(x.device) < (9, 0):
        return "the GPU has no tensor memory accelerator (needs compute capability 9.0+)"
    return None


def _gpu_configs():
    # Hopper/Ampere tensor-core tiles; pruned below to what fits Cin/Cout.
    shapes = [(128, 64, 64, 4, 4), (128, 128, 64, 8, 3), (128, 128, 32, 4, 4), (64, 64, 64, 4, 4),
              (256, 64, 64, 8, 3), (128, 256, 64, 8, 3)]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=w, num_stages=s)
            for m, n, k, w, s in shapes]


def _prune(configs, named_args, **kwargs):
    c_in, c_out = named_args["C_in"], named_args["C_out"]
    kept = [c for c in configs
            if c.kwargs["BLOCK_N"] <= max(16, next_power_of_2(c_out))
            and c.kwargs["BLOCK_K"] <= max(16, next_power_of_2(c_in))]
    return kept or configs[:1]


_conv3x3_tuned = triton.autotune(configs=_gpu_configs(), key=["C_in", "C_out"],
                                 prune_configs_by={"early_config_prune": _prune})(_conv3x3_kernel)


def pack_conv3x3_weight(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Conv2d weight (Cout, Cin, 3, 3) → the kernel's [9·Cin, Cout] matrix in `dtype`."""
    if weight.dim() != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"expected a 3×3 convolution weight (Cout, Cin, 3, 3), got shape {tuple(weight.shape)}")
    c_out, c_in = weight.shape[:2]
    return weight.detach().permute(2, 3, 1, 0).reshape(9 * c_in, c_out).to(dtype).contiguous()


def conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, *,
            epilogue: str = "none", scale: Optional[torch.Tensor] = None, shift: Optional[torch.Tensor] = None,
            residual: Optional[torch.Tensor] = None, out: Optional[torch.Tensor] = None,
            impl: str = "auto") -> torch.Tensor:
    """3×3 conv (padding 1) of N×H×W×Cin `x` with a packed [9·Cin, Cout] `weight`, plus `epilogue`.

    `impl`: "pointer", "tma", or "auto" (TMA on a Hopper+ GPU when `tma_supported`, else pointer;
    the interpreter runs "auto" as pointer).
    """
    check_tensor("x", x, ndim=4)
    n, h, w, c_in = x.shape
    check_tensor("weight", weight, ndim=2, dtypes=(x.dtype,), device=x.device)
    if weight.shape[0] != 9 * c_in:
        raise ValueError(f"weight has shape {tuple(weight.shape)}; for Cin = {c_in} it needs 9·Cin = {9 * c_in} "
                         "rows (pack it with pack_conv3x3_weight)")
    c_out = weight.shape[1]
    if epilogue not in EPILOGUES:
        raise ValueError(f"unknown epilogue {epilogue!r}; choose one of {sorted(EPILOGUES)}")
    vectors = {"bias": bias}
    if epilogue == "film_silu":
        if scale is None or shift is None:
            raise ValueError("epilogue 'film_silu' needs scale and shift")
        vectors.update(scale=scale, shift=shift)
    for name, v in vectors.items():
        if v is not None:
            check_tensor(name, v, ndim=1, dtypes=(torch.float32,), device=x.device)
            check_shape(name, v, (c_out,), "one value per output channel")
    if epilogue == "silu_residual":
        if residual is None:
            raise ValueError("epilogue 'silu_residual' needs residual")
        check_tensor("residual", residual, ndim=4, dtypes=(x.dtype,), device=x.device)
        check_shape("residual", residual, (n, h, w, c_out), "the output's shape")
    if out is None:
        out = torch.empty((n, h, w, c_out), dtype=x.dtype, device=x.device)
    else:
        check_tensor("out", out, ndim=4, dtypes=(x.dtype,), device=x.device)
        check_shape("out", out, (n, h, w, c_out))
        if out.data_ptr() == x.data_ptr():
            raise ValueError("out must not alias x (the convolution reads neighbours of every pixel)")
        if residual is not None and out.data_ptr() == residual.data_ptr():
            raise ValueError("out must not alias residual (autotuning runs the kernel more than once)")
    impl = _choose_impl(impl, x, weight, out, residual, c_out)
    m = n * h * w
    if m == 0 or c_out == 0:
        return out
    dummy = weight  # never read: the constexpr switches keep those loads out of the kernel
    tensors = (x, weight, bias if bias is not None else dummy, scale if scale is not None else dummy,
               shift if shift is not None else dummy, residual if residual is not None else dummy, out)
    launch = _launch_tma if impl == "tma" else _launch_pointer
    launch(tensors, n, h, w, c_in, c_out, HAS_BIAS=bias is not None, EPILOGUE=EPILOGUES[epilogue])
    return out


def _choose_impl(impl, x, weight, out, residual, c_out) -> str:
    """"tma" or "pointer" for `impl` ("auto" picks TMA on a GPU where `tma_supported` says so)."""
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; choose one of {IMPLS}")
    why_not = tma_supported(x, c_out)
    if why_not is None:
        misaligned = [name for name, t in (("x", x), ("weight", weight), ("out", out), ("residual", residual))
                      if t is not None and t.data_ptr() % 16]
        if misaligned:
            why_not = f"{', '.join(misaligned)} not 16-byte aligned (a view with an offset?)"
    if impl == "auto":
        return "tma" if x.is_cuda and not interpreter_enabled() and why_not is None else "pointer"
    if impl == "tma" and why_not is not None:
        raise ValueError(f"impl 'tma' cannot run this convolution: {why_not}")
    return impl


def _launch_tma(tensors, n, h, w, c_in, c_out, **flags) -> None:
    _set_descriptor_allocator()
    args = tensors + (n, h, w, c_in, c_out)
    if tensors[0].is_cuda and not interpreter_enabled():
        def grid(meta):
            return (n * triton.cdiv(h, meta["BH"]) * triton.cdiv(w, meta["BW"]) * triton.cdiv(c_out, meta["BLOCK_N"]),)
        _conv3x3_tma_tuned[grid](*args, **flags)
        return
    # The interpreter: fixed small tiles that still cross the image's edges.
    bh, bw = 2, max(8, min(32, next_power_of_2(w)))
    bn = max(16, min(64, next_power_of_2(c_out)))
    bk = max(16, min(64, next_power_of_2(c_in)))
    grid = (n * triton.cdiv(h, bh) * triton.cdiv(w, bw) * triton.cdiv(c_out, bn),)
    _conv3x3_tma_kernel[grid](*args, **flags, BH=bh, BW=bw, BLOCK_N=bn, BLOCK_K=bk)


def _launch_pointer(tensors, n, h, w, c_in, c_out, **flags) -> None:
    m = n * h * w
    args = tensors + (m, h, w, c_in, c_out)
    flags["IEEE"] = tensors[0].dtype == torch.float32
    if tensors[0].is_cuda and not interpreter_enabled():
        def grid(meta):
            return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(c_out, meta["BLOCK_N"]),)
        _conv3x3_tuned[grid](*args, **flags)
        return
    # The interpreter pays per program and per loop iteration: big tiles, no tuning.
    bm = min(256, max(16, next_power_of_2(m)))
    bn = max(16, min(64, next_power_of_2(c_out)))
    bk = max(16, min(64, next_power_of_2(c_in)))
    grid = (triton.cdiv(m, bm) * triton.cdiv(c_out, bn),)
    _conv3x3_kernel[grid](*args, **flags, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk)


def conv3x3_reference(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, *,
                      epilogue: str = "none", scale: Optional[torch.Tensor] = None,
                      shift: Optional[torch.Tensor] = None, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The same in plain PyTorch: fp32 conv2d of the N×H×W×C views, fp32 epilogue, one rounding."""
    c_out = weight.shape[1]
    c_in = weight.shape[0] // 9
    w4 = weight.float().reshape(3, 3, c_in, c_out).permute(3, 2, 0, 1)
    y = torch.nn.functional.conv2d(x.float().permute(0, 3, 1, 2), w4, None if bias is None else bias.float(),
                                   padding=1).permute(0, 2, 3, 1)
    if epilogue == "film_silu":
        y = torch.nn.functional.silu(y * (scale.float() + 1) + shift.float())
    elif epilogue == "silu_residual":
        y = torch.nn.functional.silu(y) + residual.float()
    return y.to(x.dtype).contiguous()
