"""Triton kernels, installed as `irflow_engine.kernels`.

One op per file: the `@triton.jit` kernel, its launcher and its plain-PyTorch reference side by
side. The fused ops (FiLM/SiLU epilogues, channel LayerNorm, linear attention, velocity head +
Euler update) and the "triton" backend that uses them are built in the fast-path issue; this
package holds none yet.
"""
