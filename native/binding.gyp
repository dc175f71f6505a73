{
  "targets": [
    {
      "target_name": "strata_libvirt",
      "sources": [
        "src/addon.cpp",
        "src/args.cpp",
        "src/call_queue.cpp",
        "src/close_callback.cpp",
        "src/connection.cpp",
        "src/constants.cpp",
        "src/constants_gen.cpp",
        "src/domain.cpp",
        "src/domain_blockjob.cpp",
        "src/domain_job.cpp",
        "src/errors.cpp",
        "src/event_fanout.cpp",
        "src/event_loop.cpp",
        "src/events.cpp",
        "src/snapshot.cpp",
        "src/typed_params.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags libvirt)"],
      "libraries": ["<!@(pkg-config --libs libvirt)"],
      "conditions": [
        ["OS=='linux' and '<!(echo $STRATA_SANITIZE)'=='address'", {
          "cflags_cc": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"],
          "ldflags": ["-fsanitize=address"]
        }]
      ]
    }
  ]
}
