// Precompiled header: LibTorch's headers dominate compile time (~30 s a file on 2 cores).
#pragma once
#include <torch/torch.h>
