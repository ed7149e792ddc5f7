// echo_client HOST PORT: sends each line of standard input to an echo server and
// prints what comes back, checking that it is the same. Exits 1 on a mismatch or an
// error, 0 at the end of input.
//
//   printf 'one\ntwo\n' | ./echo_client localhost 7000
#include <unistd.h>

#include <cstdio>
#include <string>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace net = weft::net;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  try {
    return weft::run([&] {
      // The name is resolved off the scheduler thread; 10 s for that and the connect.
      net::tcp_stream conn = net::tcp_stream::connect(argv[1], argv[2], 10s);
      conn.set_nodelay(true);
      // Standard input is read with plain stdio, which blocks the thread: fine with
      // one fiber, and setting O_NONBLOCK on a stdin shared with the shell is not.
      char* line = nullptr;
      std::size_t cap = 0;
      ssize_t len;
      int status = 0;
      while ((len = ::getline(&line, &cap, stdin)) > 0) {
        conn.write_all({line, static_cast<std::size_t>(len)}, 10s);
        std::string back(static_cast<std::size_t>(len), '\0');
        conn.read_exact(back, 10s);
        std::fwrite(back.data(), 1, back.size(), stdout);
        if (back != std::string_view(line, static_cast<std::size_t>(len))) {
          std::fprintf(stderr, "echo_client: the echo differs from what was sent\n");
          status = 1;
          break;
        }
      }
      std::free(line);
      conn.shutdown(net::shutdown_type::write);
      char c;
      if (conn.read_some({&c, 1}, 10s) != 0) {
        std::fprintf(stderr, "echo_client: unexpected bytes after the last echo\n");
        status = 1;
      }
      return status;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_client: %s\n", e.what());
    return 1;
  }
}
