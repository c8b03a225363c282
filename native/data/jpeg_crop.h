// The training crop of a JPEG, decoded with libjpeg-turbo: only the rows and columns of the crop box
// (jpeg_crop_scanline, jpeg_skip_scanlines), at the smallest DCT scale (n/8) that keeps the box at
// least `size` pixels on each side, then resized to size × size with an antialiased bilinear filter
// (PIL's, which torchvision's RandomResizedCrop uses). Without libjpeg (RILS_HAVE_JPEG undefined) every
// call fails and lib/ decodes with sharp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace rils::data {

/** A crop box in the image's full-size pixels. */
struct Box {
  int x, y, w, h;
};

/** Whether this build decodes JPEGs itself. */
bool jpeg_available();

/** Width and height from a JPEG's header; false when it is not a JPEG libjpeg reads as RGB. */
bool jpeg_size(const uint8_t* data, size_t bytes, int* width, int* height);

/** Decodes `box` of a JPEG into `out` (size × size × 3 RGB); returns "" or why it could not. */
std::string decode_jpeg_crop(const uint8_t* data, size_t bytes, Box box, int size, uint8_t* out);

}  // namespace rils::data
