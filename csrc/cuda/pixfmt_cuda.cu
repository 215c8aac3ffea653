// CUDA kernels of the pixel-format conversions.
//
// One thread per output pixel (frame -> tensor, and tensor -> packed R'G'B') or
// per 2x2 block (tensor -> 4:2:0, so each chroma sample is written by one thread).
// The per-pixel arithmetic is the shared code of pixfmt_math.h with explicitly
// rounded operations, so results equal the CPU path bit for bit; float16 uses
// __float2half_rn, the same round-to-nearest-even as the CPU converter.
// Reads go through the read-only cache; consecutive threads touch consecutive
// luma samples and tensor elements, so loads and stores coalesce.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <type_traits>

#include "pixfmt_cuda.h"

namespace irflow {
namespace pixfmt {
namespace cuda {
namespace {

using i64 = std::int64_t;

constexpr int kBlockX = 32;
constexpr int kBlockY = 8;

template <typename T>
__device__ __forceinline__ T load_sample(const Plane& p, i64 n, i64 y, i64 x) {
  return __ldg(reinterpret_cast<const T*>(p.ptr + n * p.batch_stride + y * p.pitch) + x);
}

template <typename T>
__device__ __forceinline__ T* sample_ptr(const Plane& p, i64 n, i64 y, i64 x) {
  return reinterpret_cast<T*>(p.ptr + n * p.batch_stride + y * p.pitch) + x;
}

__device__ __forceinline__ i64 tensor_offset(const TensorDesc& t, i64 n, int ch, i64 y, i64 x) {
  return n * t.stride_n + ch * t.stride_c + y * t.stride_h + x;
}

__device__ __forceinline__ void store_value(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_value(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ float load_value(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load_value(const __half* p) { return __half2float(__ldg(p)); }

// Sample type, code shift and plane layout of a format.
template <Format F>
struct Layout {
  using T = typename std::conditional<is_16bit(F), unsigned short, unsigned char>::type;
  static constexpr int kShift = F == Format::kP010 ? 6 : 0;
  static constexpr bool kSemi = is_semiplanar(F);
};

// ------------------------------------------------------- frame -> tensor ----

template <Format F, bool kBilinear, typename OutT>
__global__ void frame_to_tensor_kernel(FrameDesc f, TensorDesc t, DecodeCoeffs c) {
  const i64 xo = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 yo = static_cast<i64>(blockIdx.y) * blockDim.y + threadIdx.y;
  const i64 n = blockIdx.z;
  if (xo >= t.width || yo >= t.height) return;
  const i64 xs = reflect_index(xo, f.width), ys = reflect_index(yo, f.height);
  float r, g, b;
  if constexpr (!is_yuv(F)) {
    constexpr int C = packed_channels(F);
    constexpr int RI = F == Format::kBGR24 ? 2 : 0;
    const unsigned char* px = sample_ptr<const unsigned char>(f.plane[0], n, ys, C * xs);
    r = unorm8(px[RI]);
    g = unorm8(px[1]);
    b = unorm8(px[2 - RI]);
  } else {
    using L = Layout<F>;
    using T = typename L::T;
    const i64 wc = f.width / 2, hc = f.height / 2;
    const i64 i = ys >> 1, j = xs >> 1;
    // Neighbours on the pixel's side of the centre-sited sample, repeated at edges.
    i64 i2 = i, j2 = j;
    if (kBilinear) {
      i2 = (ys & 1) ? (i + 1 < hc ? i + 1 : hc - 1) : (i > 0 ? i - 1 : 0);
      j2 = (xs & 1) ? (j + 1 < wc ? j + 1 : wc - 1) : (j > 0 ? j - 1 : 0);
    }
    const int y = load_sample<T>(f.plane[0], n, ys, xs) >> L::kShift;
    int u00, u01, u10, u11, v00, v01, v10, v11;
    if constexpr (L::kSemi) {
      u00 = load_sample<T>(f.plane[1], n, i, 2 * j) >> L::kShift;
      v00 = load_sample<T>(f.plane[1], n, i, 2 * j + 1) >> L::kShift;
      u01 = load_sample<T>(f.plane[1], n, i, 2 * j2) >> L::kShift;
      v01 = load_sample<T>(f.plane[1], n, i, 2 * j2 + 1) >> L::kShift;
      u10 = load_sample<T>(f.plane[1], n, i2, 2 * j) >> L::kShift;
      v10 = load_sample<T>(f.plane[1], n, i2, 2 * j + 1) >> L::kShift;
      u11 = load_sample<T>(f.plane[1], n, i2, 2 * j2) >> L::kShift;
      v11 = load_sample<T>(f.plane[1], n, i2, 2 * j2 + 1) >> L::kShift;
    } else {
      u00 = load_sample<T>(f.plane[1], n, i, j);
      u01 = load_sample<T>(f.plane[1], n, i, j2);
      u10 = load_sample<T>(f.plane[1], n, i2, j);
      u11 = load_sample<T>(f.plane[1], n, i2, j2);
      v00 = load_sample<T>(f.plane[2], n, i, j);
      v01 = load_sample<T>(f.plane[2], n, i, j2);
      v10 = load_sample<T>(f.plane[2], n, i2, j);
      v11 = load_sample<T>(f.plane[2], n, i2, j2);
    }
    decode_pixel(y, chroma16(u00, u01, u10, u11), chroma16(v00, v01, v10, v11), c, r, g, b);
  }
  OutT* out = reinterpret_cast<OutT*>(t.ptr);
  store_value(out + tensor_offset(t, n, 0, yo, xo), r);
  store_value(out + tensor_offset(t, n, 1, yo, xo), g);
  store_value(out + tensor_offset(t, n, 2, yo, xo), b);
}

// ------------------------------------------------------- tensor -> frame ----

template <Format F, typename InT>
__global__ void tensor_to_packed_kernel(TensorDesc t, FrameDesc f) {
  const i64 x = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 y = static_cast<i64>(blockIdx.y) * blockDim.y + threadIdx.y;
  const i64 n = blockIdx.z;
  if (x >= f.width || y >= f.height) return;
  constexpr int C = packed_channels(F);
  constexpr int RI = F == Format::kBGR24 ? 2 : 0;
  const InT* in = reinterpret_cast<const InT*>(t.ptr);
  unsigned char* px = sample_ptr<unsigned char>(f.plane[0], n, y, C * x);
  px[RI] = static_cast<unsigned char>(to_unorm8(load_value(in + tensor_offset(t, n, 0, y, x))));
  px[1] = static_cast<unsigned char>(to_unorm8(load_value(in + tensor_offset(t, n, 1, y, x))));
  px[2 - RI] = static_cast<unsigned char>(to_unorm8(load_value(in + tensor_offset(t, n, 2, y, x))));
  if constexpr (C == 4) px[3] = 255;
}

template <Format F, typename InT>
__global__ void tensor_to_yuv420_kernel(TensorDesc t, FrameDesc f, EncodeCoeffs c) {
  using L = Layout<F>;
  using T = typename L::T;
  const i64 j = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  const i64 i = static_cast<i64>(blockIdx.y) * blockDim.y + threadIdx.y;
  const i64 n = blockIdx.z;
  if (j >= f.width / 2 || i >= f.height / 2) return;
  const i64 x = 2 * j, y = 2 * i;
  const InT* in = reinterpret_cast<const InT*>(t.ptr);
  float p[3][4];  // channel, pixel (00, 01, 10, 11)
  for (int ch = 0; ch < 3; ++ch) {
    p[ch][0] = clamp01(load_value(in + tensor_offset(t, n, ch, y, x)));
    p[ch][1] = clamp01(load_value(in + tensor_offset(t, n, ch, y, x + 1)));
    p[ch][2] = clamp01(load_value(in + tensor_offset(t, n, ch, y + 1, x)));
    p[ch][3] = clamp01(load_value(in + tensor_offset(t, n, ch, y + 1, x + 1)));
  }
  T* y0 = sample_ptr<T>(f.plane[0], n, y, x);
  T* y1 = sample_ptr<T>(f.plane[0], n, y + 1, x);
  y0[0] = static_cast<T>(encode_luma(p[0][0], p[1][0], p[2][0], c) << L::kShift);
  y0[1] = static_cast<T>(encode_luma(p[0][1], p[1][1], p[2][1], c) << L::kShift);
  y1[0] = static_cast<T>(encode_luma(p[0][2], p[1][2], p[2][2], c) << L::kShift);
  y1[1] = static_cast<T>(encode_luma(p[0][3], p[1][3], p[2][3], c) << L::kShift);
  int cu, cv;
  encode_chroma(sum4(p[0][0], p[0][1], p[0][2], p[0][3]), sum4(p[1][0], p[1][1], p[1][2], p[1][3]),
                sum4(p[2][0], p[2][1], p[2][2], p[2][3]), c, cu, cv);
  if constexpr (L::kSemi) {
    T* uv = sample_ptr<T>(f.plane[1], n, i, 2 * j);
    uv[0] = static_cast<T>(cu << L::kShift);
    uv[1] = static_cast<T>(cv << L::kShift);
  } else {
    *sample_ptr<T>(f.plane[1], n, i, j) = static_cast<T>(cu);
    *sample_ptr<T>(f.plane[2], n, i, j) = static_cast<T>(cv);
  }
}

// ---------------------------------------------------------------- launch ----

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state
    throw std::runtime_error(std::string("pixfmt (CUDA): ") + what + ": " + cudaGetErrorString(err));
  }
}

dim3 grid_for(i64 width, i64 height, i64 n) {
  if (n > 65535) throw std::runtime_error("pixfmt (CUDA): batch larger than 65535 frames");
  const i64 gy = (height + kBlockY - 1) / kBlockY;
  if (gy > 65535) throw std::runtime_error("pixfmt (CUDA): frame too tall");
  return dim3(static_cast<unsigned>((width + kBlockX - 1) / kBlockX), static_cast<unsigned>(gy),
              static_cast<unsigned>(n));
}

template <Format F>
void launch_decode(const FrameDesc& f, const TensorDesc& t, const DecodeCoeffs& c, Upsample up,
                   cudaStream_t s) {
  const dim3 grid = grid_for(t.width, t.height, f.n), block(kBlockX, kBlockY);
  const bool bilinear = up == Upsample::kBilinear;
  if (t.dtype == DType::kFloat32) {
    if (bilinear) frame_to_tensor_kernel<F, true, float><<<grid, block, 0, s>>>(f, t, c);
    else frame_to_tensor_kernel<F, false, float><<<grid, block, 0, s>>>(f, t, c);
  } else {
    if (bilinear) frame_to_tensor_kernel<F, true, __half><<<grid, block, 0, s>>>(f, t, c);
    else frame_to_tensor_kernel<F, false, __half><<<grid, block, 0, s>>>(f, t, c);
  }
}

template <Format F>
void launch_encode(const TensorDesc& t, const FrameDesc& f, const EncodeCoeffs& c, cudaStream_t s) {
  const dim3 block(kBlockX, kBlockY);
  if constexpr (is_yuv(F)) {
    const dim3 grid = grid_for(f.width / 2, f.height / 2, f.n);
    if (t.dtype == DType::kFloat32) tensor_to_yuv420_kernel<F, float><<<grid, block, 0, s>>>(t, f, c);
    else tensor_to_yuv420_kernel<F, __half><<<grid, block, 0, s>>>(t, f, c);
  } else {
    const dim3 grid = grid_for(f.width, f.height, f.n);
    if (t.dtype == DType::kFloat32) tensor_to_packed_kernel<F, float><<<grid, block, 0, s>>>(t, f);
    else tensor_to_packed_kernel<F, __half><<<grid, block, 0, s>>>(t, f);
  }
}

}  // namespace

void frame_to_tensor(const FrameDesc& f, const TensorDesc& t, Matrix m, Range r, Upsample up, int device,
                     std::uintptr_t stream) {
  check(cudaSetDevice(device), "cudaSetDevice");
  const DecodeCoeffs c = make_decode_coeffs(m, r, is_16bit(f.format) ? 10 : 8);
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  switch (f.format) {
    case Format::kRGB24: launch_decode<Format::kRGB24>(f, t, c, up, s); break;
    case Format::kBGR24: launch_decode<Format::kBGR24>(f, t, c, up, s); break;
    case Format::kRGBA: launch_decode<Format::kRGBA>(f, t, c, up, s); break;
    case Format::kYUV420P: launch_decode<Format::kYUV420P>(f, t, c, up, s); break;
    case Format::kYUV420P10: launch_decode<Format::kYUV420P10>(f, t, c, up, s); break;
    case Format::kNV12: launch_decode<Format::kNV12>(f, t, c, up, s); break;
    case Format::kP010: launch_decode<Format::kP010>(f, t, c, up, s); break;
  }
  check(cudaGetLastError(), "frame_to_tensor launch");
}

void tensor_to_frame(const TensorDesc& t, const FrameDesc& f, Matrix m, Range r, int device,
                     std::uintptr_t stream) {
  check(cudaSetDevice(device), "cudaSetDevice");
  const EncodeCoeffs c = make_encode_coeffs(m, r, is_16bit(f.format) ? 10 : 8);
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  switch (f.format) {
    case Format::kRGB24: launch_encode<Format::kRGB24>(t, f, c, s); break;
    case Format::kBGR24: launch_encode<Format::kBGR24>(t, f, c, s); break;
    case Format::kRGBA: launch_encode<Format::kRGBA>(t, f, c, s); break;
    case Format::kYUV420P: launch_encode<Format::kYUV420P>(t, f, c, s); break;
    case Format::kYUV420P10: launch_encode<Format::kYUV420P10>(t, f, c, s); break;
    case Format::kNV12: launch_encode<Format::kNV12>(t, f, c, s); break;
    case Format::kP010: launch_encode<Format::kP010>(t, f, c, s); break;
  }
  check(cudaGetLastError(), "tensor_to_frame launch");
}

}  // namespace cuda
}  // namespace pixfmt
}  // namespace irflow
