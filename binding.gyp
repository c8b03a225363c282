{
  "targets": [
    {
      "target_name": "rils",
      "sources": [
        "native/model/config.cpp",
        "native/model/vision.cpp",
        "native/model/text.cpp",
        "native/model/rils.cpp",
        "native/model/loss.cpp",
        "native/train/optimizer.cpp",
        "native/train/trainer.cpp",
        "native/napi/bridge.cpp",
        "native/napi/options.cpp",
        "native/napi/model.cpp",
        "native/napi/addon.cpp"
      ],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.mjs include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "<!@(node scripts/find-libtorch.mjs defines)"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/find-libtorch.mjs libs)"]
    }
  ]
}
