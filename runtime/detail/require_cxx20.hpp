// require_cxx20.hpp: the one check that a program compiles weft's headers as C++20
// (concepts, constinit, designated initializers). The headers that every other
// includes first (clock.hpp, error.hpp) include it, so an older -std= gets this one
// line before the errors that follow from it.
#pragma once

#if __cplusplus < 202002L
#error "weft needs C++20: compile with -std=c++20 (pkg-config weft and CMake's weft::weft add it; meson: project(..., default_options: ['cpp_std=c++20']))"
#endif
