"""Reference network modules (plain PyTorch)."""

from .unet import ChannelLayerNorm, ConditionalUNet, LinearAttention, ResBlock, reflect_pad

__all__ = ["ConditionalUNet", "ChannelLayerNorm", "LinearAttention", "ResBlock", "reflect_pad"]
