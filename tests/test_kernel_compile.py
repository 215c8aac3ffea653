"""Every Triton kernel compiles for an H100 (sm_90) and an A100 (sm_80), on any machine.

Triton's CPU interpreter runs the kernels as NumPy and skips the compiler's checks (constexpr-only
globals, tensor-core tile shapes, type rules), so the numerical tests alone would let a kernel
that cannot compile through to the GPU. Triton's compiler needs no GPU to lower a kernel to
PTX and cubin (its wheel ships ptxas), so this test does it in a subprocess with the interpreter
off, for both targets (`backend="auto"` picks the fused kernels on any NVIDIA GPU from compute
capability 8.0; the TMA convolution only on Hopper), for the storage dtypes and flags the
launchers use (fp16, which shares its code with bf16, and fp32, whose products take the exact-fp32
branches).
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(r'''
    import sys
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    import importlib
    import pkgutil

    import irflow_engine.kernels
    from irflow_engine.kernels import (channel_layernorm, concat_channels, conv3x3, film_silu, linear_attention,
                                       silu_residual, subpixel_concat, upsample_nearest, velocity_euler)

    if "nvidia" not in triton.backends.backends:
        print("SKIP: this Triton has no NVIDIA backend")
        sys.exit(0)

    def compile_for_gpus(fn, types, constexprs, archs=(90, 80)):
        # Unlisted arguments are int32 scalars (sizes and strides).
        signature = {name: "constexpr" if name in constexprs else types.get(name, "i32")
                     for name in fn.arg_names}
        for arch in archs:
            src = ASTSource(fn=fn, signature=signature, constexprs=constexprs)
            triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": 4})
            print("compiled", fn.__name__, f"sm_{arch}", types, constexprs, flush=True)
        compiled.add(f"{fn.__module__}.{fn.__name__}")

    compiled = set()

    F32 = "*fp32"
    for t in ("fp16", "fp32"):
        T = "*" + t
        exact = t == "fp32"
        compile_for_gpus(film_silu._film_silu_kernel,
                         {"x_ptr": T, "scale_ptr": F32, "shift_ptr": F32, "out_ptr": T}, {"BLOCK": 1024})
        compile_for_gpus(silu_residual._silu_residual_kernel,
                         {"h_ptr": T, "res_ptr": T, "out_ptr": T}, {"BLOCK": 1024})
        compile_for_gpus(channel_layernorm._channel_layernorm_kernel,
                         {"x_ptr": T, "g_ptr": F32, "bias_ptr": F32, "res_ptr": T, "out_ptr": T, "eps": "fp32"},
                         {"HAS_BIAS": True, "HAS_RESIDUAL": True, "BLOCK_M": 16, "BLOCK_C": 256})
        compile_for_gpus(upsample_nearest._upsample_nearest2x_kernel, {"x_ptr": T, "out_ptr": T},
                         {"BLOCK_P": 32, "BLOCK_C": 128})
        compile_for_gpus(concat_channels._concat_channels_kernel, {"a_ptr": T, "b_ptr": T, "out_ptr": T},
                         {"BLOCK_P": 16, "BLOCK_C": 256})
        for has_bias in (True, False):
            compile_for_gpus(subpixel_concat._subpixel_concat_kernel,
                             {"ph_ptr": T, "bias_ptr": F32, "skip_ptr": T, "out_ptr": T},
                             {"HAS_BIAS": has_bias, "BLOCK_P": 16, "BLOCK_C": 256})
        for epilogue in (1, 2):
            compile_for_gpus(conv3x3._conv3x3_kernel,
                             {"x_ptr": T, "w_ptr": T, "bias_ptr": F32, "scale_ptr": F32, "shift_ptr": F32,
                              "res_ptr": T, "out_ptr": T},
                             {"HAS_BIAS": True, "EPILOGUE": epilogue, "IEEE": exact,
                              "BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32})
            if not exact:  # the TMA kernel takes fp16/bf16 only
                compile_for_gpus(conv3x3._conv3x3_tma_kernel,
                                 {"x_ptr": T, "w_ptr": T, "bias_ptr": F32, "scale_ptr": F32, "shift_ptr": F32,
                                  "res_ptr": T, "out_ptr": T},
                                 {"HAS_BIAS": True, "EPILOGUE": epilogue, "BH": 2, "BW": 64, "BLOCK_N": 128,
                                  "BLOCK_K": 64}, archs=(90,))
        compile_for_gpus(linear_attention._linear_attention_context_kernel,
                         {"qkv_ptr": T, "part_m_ptr": F32, "part_l_ptr": F32, "part_acc_ptr": F32},
                         {"D": 32, "BLOCK_P": 64, "EXACT_F32": exact})
        compile_for_gpus(linear_attention._linear_attention_combine_kernel,
                         {"part_m_ptr": F32, "part_l_ptr": F32, "part_acc_ptr": F32, "context_ptr": F32,
                          "out_scale": "fp32"}, {"D": 32})
        compile_for_gpus(linear_attention._linear_attention_output_kernel,
                         {"qkv_ptr": T, "context_ptr": F32, "out_ptr": T},
                         {"D": 32, "BLOCK_P": 64, "EXACT_F32": exact})
        compile_for_gpus(velocity_euler._velocity_euler_kernel,
                         {"feat_ptr": T, "w_ptr": T, "bias_ptr": F32, "x_ptr": F32, "prev_ptr": F32,
                          "out_ptr": F32, "d_ptr": F32, "step_w": "fp32"},
                         {"HAS_PREV": True, "HAS_OUT": True, "HAS_D": True, "EXACT_F32": exact,
                          "BLOCK_P": 64, "BLOCK_C": 64, "BLOCK_O": 16})
    # Every @triton.jit kernel of the package (helpers called from a kernel compile with it) is above.
    kernels = set()
    for info in pkgutil.iter_modules(irflow_engine.kernels.__path__):
        module = importlib.import_module(f"irflow_engine.kernels.{info.name}")
        kernels |= {f"{module.__name__}.{name}" for name, obj in vars(module).items()
                    if isinstance(obj, triton.runtime.JITFunction) and name.endswith("_kernel")}
    missing = sorted(kernels - compiled)
    if missing or not kernels:
        sys.exit(f"kernels this test does not compile: {missing or 'none found'}")
    print("ALL COMPILED")
''')


def test_kernels_compile_for_sm90_and_sm80(tmp_path):
    from irflow_engine.kernels import triton_unavailable_reason

    reason = triton_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path / "triton-cache"), TRITON_DEFAULT_FP_FUSION="1")
    env.pop("TRITON_INTERPRET", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    if proc.stdout.startswith("SKIP:"):
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0 and "ALL COMPILED" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
