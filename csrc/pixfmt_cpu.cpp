// CPU path of the pixel-format conversions (see pixfmt.h, pixfmt_math.h).
//
// Work is split by output row (frame -> tensor) or by pair of frame rows (tensor ->
// 4:2:0 frame) across OpenMP threads.  Each row goes through per-thread float
// scratch rows, so the inner loops are plain unit-stride (or stride-2) loops over
// one row that the compiler vectorises; the per-pixel arithmetic is the shared
// code of pixfmt_math.h, hence equal to the CUDA path bit for bit.
//
// GCC keeps loops with float selects (the clamps) scalar unless it may assume that
// floating-point operations do not trap; that assumption changes no result (no
// reassociation, no contraction), so it is made for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <algorithm>
#include <cstdint>
#include <vector>

#ifdef IRFLOW_WITH_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define IRFLOW_PIXFMT_F16C 1
#endif

#include "pixfmt.h"

namespace irflow {
namespace pixfmt {
namespace cpu {
namespace {

using i64 = std::int64_t;

// Below this many output values a conversion runs on one thread: waking the
// OpenMP team costs more than it saves.
constexpr i64 kParallelMinValues = 1 << 16;

int max_threads() {
#ifdef IRFLOW_WITH_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_id() {
#ifdef IRFLOW_WITH_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

template <typename T>
const T* frame_row(const Plane& p, i64 n, i64 y) {
  return reinterpret_cast<const T*>(p.ptr + n * p.batch_stride + y * p.pitch);
}

template <typename T>
T* frame_row_mut(const Plane& p, i64 n, i64 y) {
  return reinterpret_cast<T*>(p.ptr + n * p.batch_stride + y * p.pitch);
}

template <typename T>
T* tensor_row(const TensorDesc& t, i64 n, int ch, i64 y) {
  const i64 elem = n * t.stride_n + ch * t.stride_c + y * t.stride_h;
  return reinterpret_cast<T*>(t.ptr) + elem;
}

// ------------------------------------------------------------ float16 rows ----
// x86 CPUs since 2012 convert 8 values per instruction (F16C, round to nearest even
// like the portable converter); the portable code covers the rest and the tails.

void float_to_half_portable(const float* __restrict src, std::uint16_t* __restrict dst, i64 n) {
  for (i64 x = 0; x < n; ++x) dst[x] = pixfmt::float_to_half(src[x]);
}

void half_to_float_portable(const std::uint16_t* __restrict src, float* __restrict dst, i64 n) {
  for (i64 x = 0; x < n; ++x) dst[x] = pixfmt::half_to_float(src[x]);
}

#ifdef IRFLOW_PIXFMT_F16C
__attribute__((target("avx,f16c"))) void float_to_half_f16c(const float* src, std::uint16_t* dst, i64 n) {
  i64 x = 0;
  for (; x + 8 <= n; x += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), h);
  }
  float_to_half_portable(src + x, dst + x, n - x);
}

__attribute__((target("avx,f16c"))) void half_to_float_f16c(const std::uint16_t* src, float* dst, i64 n) {
  i64 x = 0;
  for (; x + 8 <= n; x += 8)
    _mm256_storeu_ps(dst + x, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + x))));
  half_to_float_portable(src + x, dst + x, n - x);
}

bool has_f16c() {
  static const bool ok = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return ok;
}
#endif

void float_to_half_row(const float* src, std::uint16_t* dst, i64 n) {
#ifdef IRFLOW_PIXFMT_F16C
  if (has_f16c()) return float_to_half_f16c(src, dst, n);
#endif
  float_to_half_portable(src, dst, n);
}

void half_to_float_row(const std::uint16_t* src, float* dst, i64 n) {
#ifdef IRFLOW_PIXFMT_F16C
  if (has_f16c()) return half_to_float_f16c(src, dst, n);
#endif
  half_to_float_portable(src, dst, n);
}

// ------------------------------------------------------- frame -> tensor ----

// Packed 8-bit R'G'B'(A) row -> three float rows.
template <int C, int RI, int BI>
void decode_packed_row(const std::uint8_t* __restrict src, i64 width, float* __restrict r, float* __restrict g,
                       float* __restrict b) {
  for (i64 x = 0; x < width; ++x) {
    r[x] = unorm8(src[C * x + RI]);
    g[x] = unorm8(src[C * x + 1]);
    b[x] = unorm8(src[C * x + BI]);
  }
}

// 4:2:0 row ys -> three float rows.  T is the sample type, kShift the right shift
// that yields the code (6 for P010), kSemi selects interleaved UV (NV12/P010).
// cu/cv are scratch rows of width/2 + 2 ints holding the vertically filtered chroma
// with one repeated sample at each end, so the horizontal pass has no edge cases.
template <typename T, int kShift, bool kSemi, bool kBilinear>
void decode_yuv420_row(const FrameDesc& f, i64 n, i64 ys, const DecodeCoeffs& c, int* cu, int* cv,
                       float* r, float* g, float* b) {
  const i64 wc = f.width / 2, hc = f.height / 2;
  const i64 i = ys >> 1;
  // Vertical neighbour: the chroma row on the pixel's side of the sample (centre
  // siting), repeated at the frame edge; nearest uses the sample itself.
  const i64 i2 = !kBilinear ? i : ((ys & 1) ? std::min(i + 1, hc - 1) : std::max<i64>(i - 1, 0));
  if (kSemi) {
    const T* a = frame_row<T>(f.plane[1], n, i);
    const T* a2 = frame_row<T>(f.plane[1], n, i2);
    for (i64 j = 0; j < wc; ++j) {
      cu[j + 1] = 3 * (a[2 * j] >> kShift) + (a2[2 * j] >> kShift);
      cv[j + 1] = 3 * (a[2 * j + 1] >> kShift) + (a2[2 * j + 1] >> kShift);
    }
  } else {
    const T* u = frame_row<T>(f.plane[1], n, i);
    const T* u2 = frame_row<T>(f.plane[1], n, i2);
    const T* v = frame_row<T>(f.plane[2], n, i);
    const T* v2 = frame_row<T>(f.plane[2], n, i2);
    for (i64 j = 0; j < wc; ++j) {
      cu[j + 1] = 3 * u[j] + u2[j];
      cv[j + 1] = 3 * v[j] + v2[j];
    }
  }
  cu[0] = cu[1];
  cv[0] = cv[1];
  cu[wc + 1] = cu[wc];
  cv[wc + 1] = cv[wc];

  const T* yrow = frame_row<T>(f.plane[0], n, ys);
  for (i64 j = 0; j < wc; ++j) {
    // Same integers as chroma16(): 3 (3 c00 + c10) + (3 c01 + c11).
    const int ue = kBilinear ? 3 * cu[j + 1] + cu[j] : 4 * cu[j + 1];
    const int uo = kBilinear ? 3 * cu[j + 1] + cu[j + 2] : 4 * cu[j + 1];
    const int ve = kBilinear ? 3 * cv[j + 1] + cv[j] : 4 * cv[j + 1];
    const int vo = kBilinear ? 3 * cv[j + 1] + cv[j + 2] : 4 * cv[j + 1];
    decode_pixel(yrow[2 * j] >> kShift, ue, ve, c, r[2 * j], g[2 * j], b[2 * j]);
    decode_pixel(yrow[2 * j + 1] >> kShift, uo, vo, c, r[2 * j + 1], g[2 * j + 1], b[2 * j + 1]);
  }
}

// Three float rows of the frame's width -> tensor row yo, converted to the tensor's
// dtype, with columns beyond the frame filled by reflection.
void store_tensor_row(const TensorDesc& t, i64 n, i64 yo, i64 width, const float* const rgb[3]) {
  for (int ch = 0; ch < 3; ++ch) {
    const float* s = rgb[ch];
    if (t.dtype == DType::kFloat32) {
      float* o = tensor_row<float>(t, n, ch, yo);
      std::copy(s, s + width, o);
      for (i64 x = width; x < t.width; ++x) o[x] = o[reflect_index(x, width)];
    } else {
      std::uint16_t* o = tensor_row<std::uint16_t>(t, n, ch, yo);
      float_to_half_row(s, o, width);
      for (i64 x = width; x < t.width; ++x) o[x] = o[reflect_index(x, width)];
    }
  }
}

using DecodeRowFn = void (*)(const FrameDesc&, i64 n, i64 ys, const DecodeCoeffs&, int*, int*, float*,
                             float*, float*);

template <int C, int RI, int BI>
void decode_packed_entry(const FrameDesc& f, i64 n, i64 ys, const DecodeCoeffs&, int*, int*, float* r,
                         float* g, float* b) {
  decode_packed_row<C, RI, BI>(frame_row<std::uint8_t>(f.plane[0], n, ys), f.width, r, g, b);
}

template <bool kBilinear>
DecodeRowFn pick_yuv_decoder(Format fmt) {
  switch (fmt) {
    case Format::kYUV420P: return &decode_yuv420_row<std::uint8_t, 0, false, kBilinear>;
    case Format::kYUV420P10: return &decode_yuv420_row<std::uint16_t, 0, false, kBilinear>;
    case Format::kNV12: return &decode_yuv420_row<std::uint8_t, 0, true, kBilinear>;
    case Format::kP010: return &decode_yuv420_row<std::uint16_t, 6, true, kBilinear>;
    default: return nullptr;
  }
}

DecodeRowFn pick_decoder(Format fmt, Upsample up) {
  switch (fmt) {
    case Format::kRGB24: return &decode_packed_entry<3, 0, 2>;
    case Format::kBGR24: return &decode_packed_entry<3, 2, 0>;
    case Format::kRGBA: return &decode_packed_entry<4, 0, 2>;
    default:
      return up == Upsample::kBilinear ? pick_yuv_decoder<true>(fmt) : pick_yuv_decoder<false>(fmt);
  }
}

// ------------------------------------------------------- tensor -> frame ----

// Tensor row as floats: the row itself for float32, else converted into `scratch`.
const float* load_tensor_row(const TensorDesc& t, i64 n, int ch, i64 y, i64 width, float* scratch) {
  if (t.dtype == DType::kFloat32) return tensor_row<const float>(t, n, ch, y);
  const std::uint16_t* s = tensor_row<const std::uint16_t>(t, n, ch, y);
  half_to_float_row(s, scratch, width);
  return scratch;
}

template <int C, int RI, int BI>
void encode_packed_row(const float* __restrict r, const float* __restrict g, const float* __restrict b, i64 width,
                       std::uint8_t* __restrict dst) {
  for (i64 x = 0; x < width; ++x) {
    dst[C * x + RI] = static_cast<std::uint8_t>(to_unorm8(r[x]));
    dst[C * x + 1] = static_cast<std::uint8_t>(to_unorm8(g[x]));
    dst[C * x + BI] = static_cast<std::uint8_t>(to_unorm8(b[x]));
    if (C == 4) dst[C * x + 3] = 255;
  }
}

// One pair of rows: float rows R0..B1 (rows 2i, 2i+1) -> luma rows y0, y1 and chroma
// row u, v (u alone, interleaved, when kSemi).  Separate __restrict parameters let the
// compiler vectorise without runtime alias checks (uint8_t stores may alias anything).
template <typename T, int kShift, bool kSemi>
void encode_yuv420_span(const float* __restrict R0, const float* __restrict G0, const float* __restrict B0,
                        const float* __restrict R1, const float* __restrict G1, const float* __restrict B1,
                        T* __restrict y0, T* __restrict y1, T* __restrict u, T* __restrict v, i64 wc,
                        const EncodeCoeffs& c) {
  for (i64 j = 0; j < wc; ++j) {
    const i64 x = 2 * j;
    const float r00 = clamp01(R0[x]), r01 = clamp01(R0[x + 1]);
    const float g00 = clamp01(G0[x]), g01 = clamp01(G0[x + 1]);
    const float b00 = clamp01(B0[x]), b01 = clamp01(B0[x + 1]);
    const float r10 = clamp01(R1[x]), r11 = clamp01(R1[x + 1]);
    const float g10 = clamp01(G1[x]), g11 = clamp01(G1[x + 1]);
    const float b10 = clamp01(B1[x]), b11 = clamp01(B1[x + 1]);
    y0[x] = static_cast<T>(encode_luma(r00, g00, b00, c) << kShift);
    y0[x + 1] = static_cast<T>(encode_luma(r01, g01, b01, c) << kShift);
    y1[x] = static_cast<T>(encode_luma(r10, g10, b10, c) << kShift);
    y1[x + 1] = static_cast<T>(encode_luma(r11, g11, b11, c) << kShift);
    int cu, cv;
    encode_chroma(sum4(r00, r01, r10, r11), sum4(g00, g01, g10, g11), sum4(b00, b01, b10, b11), c, cu, cv);
    if (kSemi) {
      u[2 * j] = static_cast<T>(cu << kShift);
      u[2 * j + 1] = static_cast<T>(cv << kShift);
    } else {
      u[j] = static_cast<T>(cu);
      v[j] = static_cast<T>(cv);
    }
  }
}

// Rows 2i, 2i+1 of the tensor -> luma rows 2i, 2i+1 and chroma row i.
template <typename T, int kShift, bool kSemi>
void encode_yuv420_rows(const FrameDesc& f, i64 n, i64 i, const float* const rgb0[3],
                        const float* const rgb1[3], const EncodeCoeffs& c) {
  T* u = frame_row_mut<T>(f.plane[1], n, i);
  T* v = kSemi ? nullptr : frame_row_mut<T>(f.plane[2], n, i);
  encode_yuv420_span<T, kShift, kSemi>(rgb0[0], rgb0[1], rgb0[2], rgb1[0], rgb1[1], rgb1[2],
                                       frame_row_mut<T>(f.plane[0], n, 2 * i),
                                       frame_row_mut<T>(f.plane[0], n, 2 * i + 1), u, v, f.width / 2, c);
}

using EncodeRowsFn = void (*)(const FrameDesc&, i64 n, i64 i, const float* const*, const float* const*,
                              const EncodeCoeffs&);

EncodeRowsFn pick_yuv_encoder(Format fmt) {
  switch (fmt) {
    case Format::kYUV420P: return &encode_yuv420_rows<std::uint8_t, 0, false>;
    case Format::kYUV420P10: return &encode_yuv420_rows<std::uint16_t, 0, false>;
    case Format::kNV12: return &encode_yuv420_rows<std::uint8_t, 0, true>;
    case Format::kP010: return &encode_yuv420_rows<std::uint16_t, 6, true>;
    default: return nullptr;
  }
}

}  // namespace

void frame_to_tensor(const FrameDesc& f, const TensorDesc& t, Matrix m, Range r, Upsample up) {
  check_descriptors(f, t);
  const DecodeCoeffs coeffs = make_decode_coeffs(m, r, format_bits(f.format));
  const DecodeRowFn decode = pick_decoder(f.format, up);
  const i64 width = f.width;
  const i64 rows = f.n * t.height;
  // Per thread: three float rows and two int chroma rows.
  const i64 floats_per_thread = 3 * width, ints_per_thread = 2 * (width / 2 + 2);
  const int threads = max_threads();
  std::vector<float> fscratch(static_cast<size_t>(floats_per_thread) * threads);
  std::vector<int> iscratch(static_cast<size_t>(ints_per_thread) * threads);
  const bool parallel = rows * t.width * 3 >= kParallelMinValues;
  (void)parallel;

#ifdef IRFLOW_WITH_OPENMP
#pragma omp parallel for schedule(static) if (parallel)
#endif
  for (i64 k = 0; k < rows; ++k) {
    const i64 n = k / t.height, yo = k % t.height;
    float* base = fscratch.data() + static_cast<size_t>(floats_per_thread) * thread_id();
    float* rgb[3] = {base, base + width, base + 2 * width};
    int* cu = iscratch.data() + static_cast<size_t>(ints_per_thread) * thread_id();
    int* cv = cu + (width / 2 + 2);
    decode(f, n, reflect_index(yo, f.height), coeffs, cu, cv, rgb[0], rgb[1], rgb[2]);
    store_tensor_row(t, n, yo, width, rgb);
  }
}

void tensor_to_frame(const TensorDesc& t, const FrameDesc& f, Matrix m, Range r) {
  check_descriptors(f, t);
  const EncodeCoeffs coeffs = make_encode_coeffs(m, r, format_bits(f.format));
  const i64 width = f.width;
  const int threads = max_threads();
  const bool yuv = is_yuv(f.format);
  // Two rows (4:2:0 works on pairs of rows) x three channels of float scratch.
  const i64 per_thread = 6 * width;
  std::vector<float> scratch(static_cast<size_t>(per_thread) * threads);
  const i64 units = f.n * (yuv ? f.height / 2 : f.height);
  const i64 units_per_frame = yuv ? f.height / 2 : f.height;
  const bool parallel = f.n * f.height * width * 3 >= kParallelMinValues;
  (void)parallel;
  const EncodeRowsFn encode_yuv = yuv ? pick_yuv_encoder(f.format) : nullptr;

#ifdef IRFLOW_WITH_OPENMP
#pragma omp parallel for schedule(static) if (parallel)
#endif
  for (i64 k = 0; k < units; ++k) {
    const i64 n = k / units_per_frame, i = k % units_per_frame;
    float* base = scratch.data() + static_cast<size_t>(per_thread) * thread_id();
    if (yuv) {
      const float* rgb0[3];
      const float* rgb1[3];
      for (int ch = 0; ch < 3; ++ch) {
        rgb0[ch] = load_tensor_row(t, n, ch, 2 * i, width, base + (2 * ch) * width);
        rgb1[ch] = load_tensor_row(t, n, ch, 2 * i + 1, width, base + (2 * ch + 1) * width);
      }
      encode_yuv(f, n, i, rgb0, rgb1, coeffs);
    } else {
      const float* rgb[3];
      for (int ch = 0; ch < 3; ++ch) rgb[ch] = load_tensor_row(t, n, ch, i, width, base + ch * width);
      std::uint8_t* dst = frame_row_mut<std::uint8_t>(f.plane[0], n, i);
      switch (f.format) {
        case Format::kRGB24: encode_packed_row<3, 0, 2>(rgb[0], rgb[1], rgb[2], width, dst); break;
        case Format::kBGR24: encode_packed_row<3, 2, 0>(rgb[0], rgb[1], rgb[2], width, dst); break;
        default: encode_packed_row<4, 0, 2>(rgb[0], rgb[1], rgb[2], width, dst); break;
      }
    }
  }
}

void float_to_half(const float* src, std::uint16_t* dst, std::int64_t n, bool portable) {
  if (portable) float_to_half_portable(src, dst, n);
  else float_to_half_row(src, dst, n);
}

void half_to_float(const std::uint16_t* src, float* dst, std::int64_t n, bool portable) {
  if (portable) half_to_float_portable(src, dst, n);
  else half_to_float_row(src, dst, n);
}

bool has_fast_half() {
#ifdef IRFLOW_PIXFMT_F16C
  return has_f16c();
#else
  return false;
#endif
}

}  // namespace cpu
}  // namespace pixfmt
}  // namespace irflow
