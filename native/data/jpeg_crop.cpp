// The training crop of a JPEG (data/jpeg_crop.h).
#include "data/jpeg_crop.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#ifdef RILS_HAVE_JPEG
#include <jpeglib.h>
#include <csetjmp>
#ifndef LIBJPEG_TURBO_VERSION  // jpeg_crop_scanline and jpeg_skip_scanlines are libjpeg-turbo's
#undef RILS_HAVE_JPEG
#endif
#endif

namespace rils::data {
namespace {
#ifdef RILS_HAVE_JPEG

/** Decoded rows and columns around the box, and the box within them (in the decoded scale). */
struct Region {
  unsigned char* pixels = nullptr;  // malloc'd, width × height × 3
  int width = 0, height = 0;
  double x0 = 0, y0 = 0, w = 0, h = 0;         // the box
  int lo_x = 0, hi_x = 0, lo_y = 0, hi_y = 0;  // the box's whole pixels, which the filter may read
};

/** For each output pixel, the source pixels of an antialiased bilinear (triangle) filter and their weights. */
struct Taps {
  std::vector<int> first, count;
  std::vector<float> weights;  // `width` per output pixel
  int width = 0;
};

Taps taps(double start, double length, int lo, int hi, int out) {
  const double scale = length / out, support = std::max(scale, 1.0);
  Taps t;
  t.width = static_cast<int>(std::ceil(2 * support)) + 2;
  t.first.resize(out), t.count.resize(out), t.weights.assign(static_cast<size_t>(out) * t.width, 0.f);
  for (int i = 0; i < out; ++i) {
    const double centre = start + (i + 0.5) * scale;
    const int a = std::max(lo, static_cast<int>(std::floor(centre - support)));
    const int b = std::min(hi, static_cast<int>(std::ceil(centre + support)));
    double sum = 0;
    std::vector<double> w;
    for (int j = a; j < b && static_cast<int>(w.size()) < t.width; ++j) {
      w.push_back(std::max(0.0, 1.0 - std::abs((j + 0.5 - centre) / support)));
      sum += w.back();
    }
    t.first[i] = a, t.count[i] = static_cast<int>(w.size());
    if (sum <= 0) {  // a box thinner than a pixel: its nearest one
      t.first[i] = std::clamp(static_cast<int>(centre), lo, hi - 1), t.count[i] = 1;
      t.weights[static_cast<size_t>(i) * t.width] = 1.f;
      continue;
    }
    for (size_t k = 0; k < w.size(); ++k)
      t.weights[static_cast<size_t>(i) * t.width + k] = static_cast<float>(w[k] / sum);
  }
  return t;
}

/** The box of `r` resized to size × size (rows first, then columns), rounded to uint8. */
void resize(const Region& r, int size, uint8_t* out) {
  const Taps tx = taps(r.x0, r.w, r.lo_x, r.hi_x, size), ty = taps(r.y0, r.h, r.lo_y, r.hi_y, size);
  std::vector<float> rows(static_cast<size_t>(r.height) * size * 3);
  for (int y = r.lo_y; y < r.hi_y; ++y) {
    const unsigned char* src = r.pixels + static_cast<size_t>(y) * r.width * 3;
    float* dst = rows.data() + static_cast<size_t>(y) * size * 3;
    for (int x = 0; x < size; ++x) {
      const float* w = tx.weights.data() + static_cast<size_t>(x) * tx.width;
      const unsigned char* p = src + static_cast<size_t>(tx.first[x]) * 3;
      float c0 = 0, c1 = 0, c2 = 0;
      for (int k = 0; k < tx.count[x]; ++k) c0 += w[k] * p[3 * k], c1 += w[k] * p[3 * k + 1], c2 += w[k] * p[3 * k + 2];
      dst[3 * x] = c0, dst[3 * x + 1] = c1, dst[3 * x + 2] = c2;
    }
  }
  std::vector<float> acc(static_cast<size_t>(size) * 3);
  for (int y = 0; y < size; ++y) {
    const float* w = ty.weights.data() + static_cast<size_t>(y) * ty.width;
    uint8_t* dst = out + static_cast<size_t>(y) * size * 3;
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int k = 0; k < ty.count[y]; ++k) {
      const float* src = rows.data() + static_cast<size_t>(ty.first[y] + k) * size * 3;
      for (int i = 0; i < size * 3; ++i) acc[i] += w[k] * src[i];
    }
    for (int i = 0; i < size * 3; ++i) dst[i] = static_cast<uint8_t>(std::clamp(std::lround(acc[i]), 0L, 255L));
  }
}

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

/** A warning (a truncated file, corrupt data) is kept: the crop then fails, and sharp decides (lib/data/crops.ts). */
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (cinfo->err->num_warnings++ == 0) (*cinfo->err->format_message)(cinfo, e->message);
}

/**
 * Decodes the rows and columns of `box` (at the smallest n/8 scale that keeps it >= size a side) into
 * `r`. Plain C: nothing with a destructor lives across the setjmp. Returns false with `message` set.
 */
bool decode_region(const uint8_t* data, size_t bytes, Box box, int size, Region* r, char* message) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  unsigned char* volatile pixels = nullptr;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    std::free(pixels);
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(bytes));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(message, JMSG_LENGTH_MAX, "a CMYK JPEG");
    return false;
  }
  cinfo.out_color_space = JCS_RGB;
  cinfo.scale_num = 8, cinfo.scale_denom = 8;
  for (int n = 1; n <= 8; ++n) {
    if (box.w * n >= 8 * size && box.h * n >= 8 * size) {
      cinfo.scale_num = n;
      break;
    }
  }
  jpeg_start_decompress(&cinfo);
  const double fx = static_cast<double>(cinfo.output_width) / cinfo.image_width;
  const double fy = static_cast<double>(cinfo.output_height) / cinfo.image_height;
  const double x0 = box.x * fx, x1 = (box.x + box.w) * fx, y0 = box.y * fy, y1 = (box.y + box.h) * fy;
  JDIMENSION left = static_cast<JDIMENSION>(std::floor(x0));
  JDIMENSION right = std::min<JDIMENSION>(static_cast<JDIMENSION>(std::ceil(x1)), cinfo.output_width);
  JDIMENSION width = right - left;
  jpeg_crop_scanline(&cinfo, &left, &width);  // left moves to an iMCU boundary, width grows to match
  const int top = static_cast<int>(std::floor(y0));
  const int bottom = std::min(static_cast<int>(std::ceil(y1)), static_cast<int>(cinfo.output_height));
  if (top > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(top));
  pixels = static_cast<unsigned char*>(std::malloc(static_cast<size_t>(width) * 3 * (bottom - top)));
  if (!pixels) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(message, JMSG_LENGTH_MAX, "out of memory");
    return false;
  }
  while (static_cast<int>(cinfo.output_scanline) < bottom) {
    JSAMPROW row = pixels + static_cast<size_t>(cinfo.output_scanline - top) * width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_abort_decompress(&cinfo);
  const bool warned = err.pub.num_warnings > 0;
  jpeg_destroy_decompress(&cinfo);
  if (warned) {
    std::free(pixels);
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    return false;
  }
  r->pixels = pixels, r->width = static_cast<int>(width), r->height = bottom - top;
  r->x0 = x0 - left, r->w = x1 - x0, r->y0 = y0 - top, r->h = y1 - y0;
  r->lo_x = static_cast<int>(std::floor(x0)) - static_cast<int>(left),
  r->hi_x = static_cast<int>(right) - static_cast<int>(left);
  r->lo_y = 0, r->hi_y = r->height;
  return true;
}
#endif

}  // namespace

bool jpeg_available() {
#ifdef RILS_HAVE_JPEG
  return true;
#else
  return false;
#endif
}

bool jpeg_size(const uint8_t* data, size_t bytes, int* width, int* height) {
#ifdef RILS_HAVE_JPEG
  if (bytes < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) return false;
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(bytes));
  jpeg_read_header(&cinfo, TRUE);
  const bool rgb = cinfo.jpeg_color_space != JCS_CMYK && cinfo.jpeg_color_space != JCS_YCCK;
  *width = static_cast<int>(cinfo.image_width), *height = static_cast<int>(cinfo.image_height);
  jpeg_destroy_decompress(&cinfo);
  return rgb;
#else
  (void)data, (void)bytes, (void)width, (void)height;
  return false;
#endif
}

std::string decode_jpeg_crop(const uint8_t* data, size_t bytes, Box box, int size, uint8_t* out) {
#ifdef RILS_HAVE_JPEG
  if (box.w <= 0 || box.h <= 0 || size <= 0) return "an empty crop box";
  Region r;
  std::vector<char> message(JMSG_LENGTH_MAX);
  if (!decode_region(data, bytes, box, size, &r, message.data())) return message.data();
  resize(r, size, out);
  std::free(r.pixels);
  return "";
#else
  (void)data, (void)bytes, (void)box, (void)size, (void)out;
  return "this build has no JPEG decoder";
#endif
}

}  // namespace rils::data
