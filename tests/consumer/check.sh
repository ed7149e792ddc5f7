#!/usr/bin/env bash
# tests/consumer/check.sh: weft used the way another project uses it. Installs weft
# into a temporary prefix, then builds and runs the README's hello program
#   - through pkg-config, linked shared and linked static,
#   - through CMake's find_package(weft), weft::weft and weft::weft_static,
#   - as a meson subproject (dependency('weft')),
# compiles every installed public header on its own, checks that weft.pc holds no
# path of the build machine, and that a program built with AddressSanitizer is told
# at start to link weft-asan, and runs when it does. (About 3 minutes on 2 cores: three
# library builds at -O0 and every public header compiled alone.)
# Prints "consumer: N passed, N failed" (one per check) and exits 1 if any failed.
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
hello=$src/examples/hello_fiber.cpp
expected="hello, fiber (3 ticks meanwhile)"
passed=0
failed=0

check() {  # check NAME COMMAND...: one line per check, its output shown on failure
  local name=$1
  shift
  if out=$("$@" 2>&1); then
    echo "consumer: ok   $name"
    passed=$((passed + 1))
  else
    echo "consumer: FAIL $name"
    echo "$out" | tail -20 | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

runs_hello() {  # runs_hello PROGRAM: prints the expected line
  local got
  got=$("$@") || return 1
  [ "$got" = "$expected" ] || { echo "printed: $got"; return 1; }
}

# The library is built without optimization and as a unity build here: these checks
# are about how it is installed and found, and -O0 builds it in a third of the time,
# four files to a translation unit in half of that again.
install_weft() {  # install_weft BUILD_DIR [meson args]
  local dir=$1
  shift
  meson setup "$dir" "$src" --prefix="$prefix" --libdir=lib -Doptimization=0 -Ddebug=false -Dunity=on -Dtests=false \
    -Dbenchmarks=false -Dexamples=false "$@" >/dev/null && ninja -C "$dir" install >/dev/null
}

check "install into a temporary prefix" install_weft "$work/build"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export LD_LIBRARY_PATH=$prefix/lib

# Every installed header compiles on its own (nothing public is missing), and
# cleanly under a user's strict warnings (weft.pc gives -I, not -isystem).
headers_compile() {  # one compiler per core
  (cd "$prefix/include" && find weft -name '*.hpp' -not -path '*/detail/*') |
    xargs -P "$(nproc)" -I{} sh -c 'echo "#include <{}>" |
      g++ -x c++ -fsyntax-only -Wall -Wextra -Wshadow -Werror $0 - || { echo "in {}"; exit 1; }' \
      "$(pkg-config --cflags weft)"
}
check "every public header compiles alone" headers_compile
check "weft.pc names no build path" bash -c "! grep -n '$src\|/build' '$prefix/lib/pkgconfig/weft.pc'"

check "pkg-config, shared" bash -c "g++ '$hello' -o '$work/hello_pc' \$(pkg-config --cflags --libs weft) &&
  readelf -d '$work/hello_pc' | grep -q 'libweft.so.0'"
check "  runs" runs_hello "$work/hello_pc"
check "pkg-config, static" bash -c "g++ '$hello' -o '$work/hello_pc_static' -static \
  \$(pkg-config --cflags weft) \$(pkg-config --static --libs weft)"
check "  runs" runs_hello "$work/hello_pc_static"
# The README's "only weft static" line: the archive by name, the rest shared.
check "pkg-config, only weft static" bash -c "g++ '$hello' -o '$work/hello_weft_static' \$(pkg-config --cflags weft) \
  -L\$(pkg-config --variable=libdir weft) -l:libweft.a -lboost_context -lssl -lcrypto -pthread &&
  ! readelf -d '$work/hello_weft_static' | grep -q libweft"
check "  runs" runs_hello "$work/hello_weft_static"

cmake_build() {
  cmake -S "$src/tests/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$work/cmake" >/dev/null
}
check "CMake find_package(weft)" cmake_build
check "  weft::weft runs" runs_hello "$work/cmake/hello_shared"
check "  weft::weft_static runs" runs_hello "$work/cmake/hello_static"
# Without OpenSSL's development files, the shared library is still found and links.
cmake_without_openssl() {
  cmake -S "$src/tests/consumer" -B "$work/cmake-no-ssl" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=TRUE >/dev/null &&
    cmake --build "$work/cmake-no-ssl" >/dev/null && [ ! -e "$work/cmake-no-ssl/hello_static" ]
}
check "CMake find_package(weft) without OpenSSL: weft::weft" cmake_without_openssl
check "  runs" runs_hello "$work/cmake-no-ssl/hello_shared"

meson_subproject() {
  local proj=$work/subproject
  mkdir -p "$proj/subprojects"
  cp "$src/tests/consumer/meson.build" "$hello" "$proj/"
  mv "$proj/hello_fiber.cpp" "$proj/hello.cpp"
  ln -s "$src" "$proj/subprojects/weft"
  # --force-fallback-for: the weft installed above (PKG_CONFIG_PATH) would be found
  # first otherwise, and the subproject never configured.
  meson setup "$proj/build" "$proj" -Doptimization=0 -Ddebug=false -Dunity=on --force-fallback-for=weft >/dev/null &&
    ninja -C "$proj/build" >/dev/null &&
    [ -d "$proj/build/subprojects/weft" ] && [ ! -e "$proj/build/subprojects/weft/tests" ]
}
check "meson subproject, dependency('weft')" meson_subproject
check "  runs" runs_hello "$work/subproject/build/hello"
# The same project configured with ASan: the subproject is configured with it (as
# libweft-asan) and is still found as dependency('weft'), which meson checks at
# setup. Not built: the weft-asan install below builds and runs the same library.
meson_subproject_asan() {
  meson setup "$work/subproject/build-asan" "$work/subproject" -Doptimization=0 -Ddebug=false \
    -Db_sanitize=address -Db_lundef=false --force-fallback-for=weft >/dev/null &&
    [ -d "$work/subproject/build-asan/subprojects/weft" ] &&
    grep -q "libweft-asan" "$work/subproject/build-asan/build.ninja"
}
check "meson subproject configured with ASan, dependency('weft')" meson_subproject_asan

# A program built with ASan against the plain library is told what to link instead.
told_to_link_asan() {
  g++ -fsanitize=address "$hello" -o "$work/hello_asan_plain" $(pkg-config --cflags --libs weft) || return 1
  local out
  out=$("$work/hello_asan_plain" 2>&1) && { echo "ran: $out"; return 1; }
  echo "$out" | grep -q "link weft-asan" || { echo "$out"; return 1; }
}
check "ASan program, plain weft: told to link weft-asan" told_to_link_asan
check "install weft-asan" install_weft "$work/build-asan" -Db_sanitize=address -Db_lundef=false
check "ASan program, weft-asan" bash -c "g++ '$hello' -o '$work/hello_asan' \$(pkg-config --cflags --libs weft-asan)"
check "  runs" env ASAN_OPTIONS=detect_stack_use_after_return=0 "$work/hello_asan"

echo "consumer: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
