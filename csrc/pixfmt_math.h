// Pixel-format conversion arithmetic shared by the C++ (pixfmt_cpu.cpp) and CUDA
// (cuda/pixfmt_cuda.cu) paths.
//
// Every function here is compiled for both the host and the device, and spells out
// each floating-point operation (fmul/fadd), so that the two paths perform the same
// IEEE operations in the same order and give bit-identical results.  On the device
// the operations are __fmul_rn/__fadd_rn, which nvcc never contracts into FMAs; on
// the host the build uses ISO C++17 (no GNU extensions), for which GCC and Clang do
// not contract either.
//
// Conventions (also stated in irflow_engine/pixfmt.py):
// - Y'CbCr from R'G'B' in [0, 1] with Kr, Kb of the matrix (ITU-R BT.601, BT.709,
//   BT.2020 non-constant luminance):  Y = Kr R + Kg G + Kb B,
//   Cb = (B - Y) / (2 (1 - Kb)),  Cr = (R - Y) / (2 (1 - Kr)).
// - Quantisation to n-bit codes as in ITU-T H.273: limited range
//   Y = 2^(n-8) (219 Y + 16), C = 2^(n-8) (224 C + 128); full range
//   Y = (2^n - 1) Y, C = (2^n - 1) C + 2^(n-1).
// - 4:2:0 chroma is centre-sited (JPEG / MPEG-1 siting): a chroma sample sits at the
//   centre of its 2x2 luma block.  Downsampling averages the 2x2 block of R'G'B';
//   bilinear upsampling weighs the four nearest chroma samples 9/16, 3/16, 3/16, 1/16
//   (edge samples repeated), i.e. torch's bilinear, align_corners=False, scale 2;
//   nearest upsampling copies the block's sample.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define IRFLOW_HD __host__ __device__ __forceinline__
#else
#define IRFLOW_HD inline
#endif

namespace irflow {
namespace pixfmt {

enum class Format : int {
  kRGB24 = 0,
  kBGR24 = 1,
  kRGBA = 2,
  kYUV420P = 3,
  kYUV420P10 = 4,
  kNV12 = 5,
  kP010 = 6,
};

enum class Matrix : int { kBT601 = 0, kBT709 = 1, kBT2020 = 2 };
enum class Range : int { kLimited = 0, kFull = 1 };
enum class Upsample : int { kNearest = 0, kBilinear = 1 };
enum class DType : int { kFloat32 = 0, kFloat16 = 1 };

// One plane of a batch of frames: byte address of frame 0, bytes between rows,
// bytes between frames.
struct Plane {
  std::uintptr_t ptr;
  std::int64_t pitch;
  std::int64_t batch_stride;
};

// A batch of n frames of height x width pixels (luma size for YUV formats).
// Planes: packed RGB formats use plane 0; yuv420p(10le) use Y, U, V; NV12/P010
// use Y and the interleaved UV plane.
struct FrameDesc {
  Format format;
  std::int64_t n;
  std::int64_t height;
  std::int64_t width;
  Plane plane[3];
};

// An n x 3 x height x width tensor; strides in elements, the last dimension has
// stride 1.
struct TensorDesc {
  std::uintptr_t ptr;
  DType dtype;
  std::int64_t n;
  std::int64_t height;
  std::int64_t width;
  std::int64_t stride_n;
  std::int64_t stride_c;
  std::int64_t stride_h;
};

IRFLOW_HD constexpr bool is_yuv(Format f) { return static_cast<int>(f) >= static_cast<int>(Format::kYUV420P); }
IRFLOW_HD constexpr bool is_16bit(Format f) { return f == Format::kYUV420P10 || f == Format::kP010; }
IRFLOW_HD constexpr bool is_semiplanar(Format f) { return f == Format::kNV12 || f == Format::kP010; }
IRFLOW_HD constexpr int packed_channels(Format f) { return f == Format::kRGBA ? 4 : 3; }

// --------------------------------------------------------------- arithmetic ----

IRFLOW_HD float fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

IRFLOW_HD float fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

IRFLOW_HD float fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// Clamp to [0, 1]; NaN becomes 0.
IRFLOW_HD float clamp01(float v) {
  const float lo = v > 0.f ? v : 0.f;  // two plain selects: vectorisable
  return lo < 1.f ? lo : 1.f;
}

// Round a value known to be >= -0.5 to the nearest integer (halves up) and clamp it
// to [0, max_code].  `v_plus_half` already contains the +0.5.
IRFLOW_HD int round_code(float v_plus_half, int max_code) {
  int c = static_cast<int>(v_plus_half);  // truncation == floor for v >= 0
  c = c < 0 ? 0 : c;
  return c > max_code ? max_code : c;
}

// Reflect index i of a padded axis into [0, n): equals torch's "reflect" padding
// where that is defined (pad < n) and keeps reflecting (period 2(n-1)) beyond it;
// a size-1 axis repeats its only sample (irflow_engine.models.unet.reflect_pad).
IRFLOW_HD std::int64_t reflect_index(std::int64_t i, std::int64_t n) {
  if (i < n) return i;
  if (n == 1) return 0;
  const std::int64_t period = 2 * (n - 1);
  const std::int64_t m = i % period;
  return m < n ? m : period - m;
}

// ------------------------------------------------------------- coefficients ----

// Codes -> R'G'B' in [0, 1].  Chroma arrives as 16 x the (interpolated) code, an
// exact integer for both nearest (16 c) and bilinear (9 c00 + 3 c01 + 3 c10 + c11).
struct DecodeCoeffs {
  int y_off;        // luma code of black
  int c_off16;      // 16 x chroma code of zero
  float y_scale;    // 1 / luma code span
  float c_scale16;  // 1 / (16 x chroma code span)
  float r_cr;       // R = Y + r_cr Cr
  float g_cb;       // G = Y + g_cb Cb + g_cr Cr
  float g_cr;
  float b_cb;       // B = Y + b_cb Cb
};

// R'G'B' in [0, 1] -> codes (before rounding; the +0.5 of the rounding is folded
// into the offsets).  Chroma coefficients include the 1/4 of the 2x2 average and
// apply to the sums of four pixels.
struct EncodeCoeffs {
  float y_r, y_g, y_b, y_off_half;
  float u_r, u_g, u_b;
  float v_r, v_g, v_b;
  float c_off_half;
  int max_code;
};

struct MatrixK {
  double kr, kb;
};

inline MatrixK matrix_k(Matrix m) {
  switch (m) {
    case Matrix::kBT601: return {0.299, 0.114};    // ITU-R BT.601
    case Matrix::kBT709: return {0.2126, 0.0722};  // ITU-R BT.709
    case Matrix::kBT2020: return {0.2627, 0.0593};  // ITU-R BT.2020 (NCL)
  }
  return {0.2126, 0.0722};
}

// Luma/chroma code span and offsets for `bits`-bit codes (H.273).
struct CodeRange {
  double y_span, c_span;
  int y_off, c_off, max_code;
};

inline CodeRange code_range(Range r, int bits) {
  const double scale = static_cast<double>(1 << (bits - 8));
  const int max_code = (1 << bits) - 1;
  if (r == Range::kLimited) return {219.0 * scale, 224.0 * scale, 16 << (bits - 8), 1 << (bits - 1), max_code};
  return {static_cast<double>(max_code), static_cast<double>(max_code), 0, 1 << (bits - 1), max_code};
}

inline DecodeCoeffs make_decode_coeffs(Matrix m, Range r, int bits) {
  const MatrixK k = matrix_k(m);
  const double kg = 1.0 - k.kr - k.kb;
  const CodeRange cr = code_range(r, bits);
  DecodeCoeffs c;
  c.y_off = cr.y_off;
  c.c_off16 = 16 * cr.c_off;
  c.y_scale = static_cast<float>(1.0 / cr.y_span);
  c.c_scale16 = static_cast<float>(1.0 / (16.0 * cr.c_span));
  c.r_cr = static_cast<float>(2.0 * (1.0 - k.kr));
  c.b_cb = static_cast<float>(2.0 * (1.0 - k.kb));
  c.g_cb = static_cast<float>(-2.0 * k.kb * (1.0 - k.kb) / kg);
  c.g_cr = static_cast<float>(-2.0 * k.kr * (1.0 - k.kr) / kg);
  return c;
}

inline EncodeCoeffs make_encode_coeffs(Matrix m, Range r, int bits) {
  const MatrixK k = matrix_k(m);
  const double kg = 1.0 - k.kr - k.kb;
  const CodeRange cr = code_range(r, bits);
  const double cb_div = 2.0 * (1.0 - k.kb), cr_div = 2.0 * (1.0 - k.kr);
  const double q = 0.25 * cr.c_span;  // 2x2 average and chroma span
  EncodeCoeffs c;
  c.y_r = static_cast<float>(k.kr * cr.y_span);
  c.y_g = static_cast<float>(kg * cr.y_span);
  c.y_b = static_cast<float>(k.kb * cr.y_span);
  c.y_off_half = static_cast<float>(cr.y_off + 0.5);
  c.u_r = static_cast<float>(-k.kr / cb_div * q);
  c.u_g = static_cast<float>(-kg / cb_div * q);
  c.u_b = static_cast<float>((1.0 - k.kb) / cb_div * q);
  c.v_r = static_cast<float>((1.0 - k.kr) / cr_div * q);
  c.v_g = static_cast<float>(-kg / cr_div * q);
  c.v_b = static_cast<float>(-k.kb / cr_div * q);
  c.c_off_half = static_cast<float>(cr.c_off + 0.5);
  c.max_code = cr.max_code;
  return c;
}

// ------------------------------------------------------------------ kernels ----

// One pixel's codes -> R'G'B' in [0, 1].  cb16/cr16 are 16 x the chroma codes.
IRFLOW_HD void decode_pixel(int y, int cb16, int cr16, const DecodeCoeffs& c, float& r, float& g,
                            float& b) {
  const float yn = fmul(static_cast<float>(y - c.y_off), c.y_scale);
  const float cb = fmul(static_cast<float>(cb16 - c.c_off16), c.c_scale16);
  const float cr = fmul(static_cast<float>(cr16 - c.c_off16), c.c_scale16);
  r = clamp01(fadd(yn, fmul(c.r_cr, cr)));
  g = clamp01(fadd(fadd(yn, fmul(c.g_cb, cb)), fmul(c.g_cr, cr)));
  b = clamp01(fadd(yn, fmul(c.b_cb, cb)));
}

// Chroma of one luma pixel as 16 x code.  c00 is the chroma sample of the pixel's
// block, c01 the horizontal neighbour towards the pixel, c10 the vertical one and
// c11 the diagonal one (the caller passes c00 for all four when upsampling with
// nearest, or at an edge, where samples are repeated).
IRFLOW_HD int chroma16(int c00, int c01, int c10, int c11) {
  const int v0 = 3 * c00 + c10;  // vertical pass: weights 3/4, 1/4
  const int v1 = 3 * c01 + c11;
  return 3 * v0 + v1;  // horizontal pass: weights 3/4, 1/4 (total weight 16)
}

// Luma code of one clamped R'G'B' pixel.
IRFLOW_HD int encode_luma(float r, float g, float b, const EncodeCoeffs& c) {
  const float y = fadd(fadd(fadd(fmul(c.y_r, r), fmul(c.y_g, g)), fmul(c.y_b, b)), c.y_off_half);
  return round_code(y, c.max_code);
}

// Chroma codes of one 2x2 block given the sums of its four clamped pixels.
IRFLOW_HD void encode_chroma(float rs, float gs, float bs, const EncodeCoeffs& c, int& u, int& v) {
  const float uf = fadd(fadd(fadd(fmul(c.u_r, rs), fmul(c.u_g, gs)), fmul(c.u_b, bs)), c.c_off_half);
  const float vf = fadd(fadd(fadd(fmul(c.v_r, rs), fmul(c.v_g, gs)), fmul(c.v_b, bs)), c.c_off_half);
  u = round_code(uf, c.max_code);
  v = round_code(vf, c.max_code);
}

// Sum of a 2x2 block in a fixed order.
IRFLOW_HD float sum4(float p00, float p01, float p10, float p11) {
  return fadd(fadd(p00, p01), fadd(p10, p11));
}

// 8-bit R'G'B' component -> [0, 1] (correctly rounded k / 255).
IRFLOW_HD float unorm8(int v) { return fdiv(static_cast<float>(v), 255.f); }

// [0, 1] (clamped here) -> 8-bit code, rounded to nearest.
IRFLOW_HD int to_unorm8(float v) { return round_code(fadd(fmul(clamp01(v), 255.f), 0.5f), 255); }

// ------------------------------------------------- IEEE binary16 on the host ----
// The device uses __float2half_rn / __half2float, which round the same way.

inline std::uint32_t float_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// float -> half, round to nearest even; NaN -> quiet NaN, overflow -> inf.
// Written with selects rather than branches so that loops over it vectorise.
inline std::uint16_t float_to_half(float f) {
  const std::uint32_t x = float_bits(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t a = x & 0x7fffffffu;
  // Normal half (|f| >= 2^-14): rebias the exponent from 127 to 15 and round the 13
  // dropped mantissa bits to nearest, ties to even (a carry may bump the exponent).
  const std::uint32_t normal = (a - 0x38000000u + 0x0fffu + ((a >> 13) & 1u)) >> 13;
  // Subnormal half (|f| < 2^-14): adding 0.5 makes the float's ulp 2^-24, the
  // half's subnormal step, so the FPU's own rounding yields the half mantissa.
  const std::uint32_t sub = float_bits(bits_float(a) + 0.5f) - 0x3f000000u;
  std::uint32_t h = a < 0x38800000u ? sub : normal;
  h = a >= 0x477ff000u ? 0x7c00u : h;  // >= 65520 rounds to infinity
  h = a > 0x7f800000u ? 0x7e00u : h;   // NaN
  return static_cast<std::uint16_t>(h | sign);
}

// half -> float, exact (selects, not branches, so that loops over it vectorise).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  const std::uint32_t normal = sign | ((e + 112u) << 23) | (m << 13);
  const std::uint32_t inf_nan = sign | 0x7f800000u | (m << 13);
  // zero or subnormal: m x 2^-24, exact in float
  const std::uint32_t sub = sign | float_bits(static_cast<float>(m) * 5.9604644775390625e-8f);
  return bits_float(e == 0 ? sub : (e == 31 ? inf_nan : normal));
}

}  // namespace pixfmt
}  // namespace irflow
