"""Restore large frames in overlapping tiles, blended with feathered weights.

A frame larger than the memory budget is cut into tiles of at most `tile`×`tile` pixels placed
every `tile - overlap` pixels (the last row/column of tiles is moved back to end at the border,
so every tile has the same size and all tiles batch together). Each tile is restored on its own;
the results are averaged with weights that ramp across the overlap on the sides where a tile has a
neighbour and stay 1 elsewhere (see `_ramp`), so each output pixel is a convex combination of the
tiles that cover it, a tile's outer border (where its reflect padding differs from the true
neighbourhood) counts almost nothing, and the blend has no step. Where one tile covers a pixel the
output is exactly that tile's.

The network's linear attention sees the whole input, so tiled and untiled results differ
slightly everywhere, not only near seams; tests/test_tiling.py states the tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch

DEFAULT_OVERLAP = 32
# Tile size the engine falls back to after a CUDA out-of-memory error (pixels per side).
FALLBACK_TILE = 512
# Weight of a tile's outermost pixels: not 0, so every pixel stays covered whatever the grid.
_EPS = 1e-4


@dataclass(frozen=True)
class TileGrid:
    """Where the tiles of an H×W frame start, and their (equal) size."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: Tuple[int, ...]
    xs: Tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)


def _starts(size: int, tile: int, overlap: int) -> Tuple[int, ...]:
    if tile >= size:
        return (0,)
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return tuple(starts)


def check_tile_options(tile: Optional[int], overlap: int) -> None:
    """ValueError unless `plan_tiles` takes (`tile`, `overlap`); `tile` None (whole frames) checks
    only that the overlap is an integer >= 0 (the out-of-memory fallback's tiles use it)."""
    if tile is not None and (not isinstance(tile, int) or isinstance(tile, bool) or tile < 1):
        raise ValueError(f"tile must be a positive integer (pixels), got {tile!r}")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 0:
        raise ValueError(f"tile_overlap must be an integer >= 0 (pixels), got {overlap!r}")
    if tile is not None and 2 * overlap >= tile:
        raise ValueError(f"tile_overlap must be an integer in [0, tile/2) = [0, {(tile + 1) // 2}), "
                         f"got {overlap!r} for tile {tile} (the overlap defaults to {DEFAULT_OVERLAP} pixels: "
                         "choose a larger tile or a smaller overlap)")


def plan_tiles(height: int, width: int, tile: int, overlap: int = DEFAULT_OVERLAP) -> TileGrid:
    """The tile grid for an H×W frame; `tile` is clamped to the frame, `overlap` must be < tile/2."""
    if tile is None:
        raise ValueError("tile must be a positive integer (pixels), got None")
    check_tile_options(tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    return TileGrid(height, width, th, tw, _starts(height, th, overlap), _starts(width, tw, overlap))


def _ramp(length: int, overlap: int, rising: bool, falling: bool) -> torch.Tensor:
    """1-D weights of a tile, 1 except across the `overlap` samples at each flagged end.

    There the weight is ~0 over the outer quarter (the tile's own border, where its reflect
    padding misleads the network), rises linearly over the middle half, and is 1 over the inner
    quarter; the neighbour's ramp is the mirror image, so the two weights sum to 1.
    """
    w = torch.ones(length, dtype=torch.float32)
    if overlap > 0:
        margin = overlap // 4
        span = overlap - 2 * margin
        i = torch.arange(overlap, dtype=torch.float32)
        r = ((i - margin + 0.5) / span).clamp(_EPS, 1.0)
        if rising:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if falling:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


def tile_weights(grid: TileGrid, overlap: int, iy: int, ix: int) -> torch.Tensor:
    """The tile_h×tile_w blending weight of tile (iy, ix); ramps only towards neighbouring tiles."""
    wy = _ramp(grid.tile_h, overlap, iy > 0, iy < len(grid.ys) - 1)
    wx = _ramp(grid.tile_w, overlap, ix > 0, ix < len(grid.xs) - 1)
    return wy[:, None] * wx[None, :]


def restore_tiled(restore: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, tile: int,
                  overlap: int = DEFAULT_OVERLAP) -> torch.Tensor:
    """Apply `restore` (N×C×h×w -> N×C×h×w) to the tiles of `y` (N×C×H×W) and blend the results.

    All tiles of all frames go to `restore` in one call (it is expected to split large batches).
    """
    n, c, h, w = y.shape
    grid = plan_tiles(h, w, tile, overlap)
    if len(grid) == 1:
        return restore(y)
    th, tw = grid.tile_h, grid.tile_w
    places: List[Tuple[int, int, int, int]] = [(iy, ix, y0, x0) for iy, y0 in enumerate(grid.ys)
                                               for ix, x0 in enumerate(grid.xs)]
    tiles = torch.stack([y[:, :, y0:y0 + th, x0:x0 + tw] for _, _, y0, x0 in places], dim=1)
    out_tiles = restore(tiles.reshape(n * len(places), c, th, tw)).reshape(n, len(places), -1, th, tw)
    out = torch.zeros((n, out_tiles.shape[2], h, w), dtype=torch.float32, device=y.device)
    norm = torch.zeros((h, w), dtype=torch.float32, device=y.device)
    for k, (iy, ix, y0, x0) in enumerate(places):
        wt = tile_weights(grid, overlap, iy, ix).to(y.device)
        out[:, :, y0:y0 + th, x0:x0 + tw] += out_tiles[:, k].float() * wt
        norm[y0:y0 + th, x0:x0 + tw] += wt
    return out / norm


def fallback_tile(height: int, width: int, multiple: int) -> int:
    """The tile size to retry with after running out of memory on a whole H×W frame.

    `FALLBACK_TILE` for frames larger than it, else half the larger side; a multiple of
    `multiple` (the network's padding multiple) so tiles need no padding.
    """
    side = FALLBACK_TILE if max(height, width) > FALLBACK_TILE else max(height, width) // 2
    return max(multiple, side // multiple * multiple)
