// http_server [--threads N] [--tls CERT KEY] PORT [DIR]: an HTTP/1.1 server on
// weft::http.
//
//   GET /hello    -> "hello\n" (the route the benchmarks drive)
//   GET /anything -> the file DIR/anything, when DIR is given (DIR/x/index.html for
//                    /x/, a redirect to /x/ for /x); 404 if there is none, 403 if
//                    it cannot be read. A file over 256 KiB is streamed in 64 KiB
//                    pieces with its Content-Length, as the client takes them
//
// Paths are percent-decoded and refused (400) if a segment is "..", and a symbolic
// link that leads outside DIR is not followed (404), so nothing outside DIR is
// served; nor is anything but regular files (a FIFO or a device: 403). With --threads N (default 1; 0: one per CPU) it runs N
// schedulers, each with its own listener on PORT (SO_REUSEPORT) and its own
// connections. SIGINT or SIGTERM closes the listeners; requests in progress get
// a second to finish, then the process exits 0. PORT 0 lets the kernel choose;
// the first line printed says where it listens. With --tls it speaks HTTPS with the
// certificate chain CERT and private key KEY (PEM files).
//
//   ./http_server 8080 ./public &
//   curl http://127.0.0.1:8080/hello
//   ./http_server --tls cert.pem key.pem 8443 &
//   curl --cacert ca.pem https://localhost:8443/hello
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace http = weft::http;
namespace net = weft::net;

namespace {

// decode_path percent-decodes a request path; nullopt if it is malformed or climbs
// out of the served directory (a ".." segment, an encoded NUL).
std::optional<std::string> decode_path(std::string_view path) {
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out += path[i];
      continue;
    }
    unsigned value = 0;
    const char* digits = path.data() + i + 1;
    if (i + 2 >= path.size() || std::from_chars(digits, digits + 2, value, 16).ptr != digits + 2) return std::nullopt;
    if (value == 0) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  if (!out.starts_with('/')) return std::nullopt;
  for (std::size_t at = 0; at != std::string::npos;) {
    const std::size_t next = out.find('/', at + 1);
    if (out.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1) == "..") return std::nullopt;
    at = next;
  }
  return out;
}

std::string_view content_type(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".css", "text/css"},                  {".js", "text/javascript"},
      {".json", "application/json"},         {".txt", "text/plain; charset=utf-8"},
      {".png", "image/png"},                 {".jpg", "image/jpeg"},
      {".svg", "image/svg+xml"},             {".ico", "image/x-icon"},
  };
  for (const auto& [ext, type] : types)
    if (path.ends_with(ext)) return type;
  return "application/octet-stream";
}

// look_up says what `file` is, off the scheduler (realpath and stat may wait on a
// slow disk), and a regular file's size: outside when it resolves (through
// symbolic links) to a place outside `dir_real`, the served directory's own real
// path; other for what is neither a regular file nor a directory (a FIFO would
// block the read for good, a device would serve its contents).
enum class file_kind { regular, directory, outside, other, missing, forbidden };
struct file_info {
  file_kind kind;
  std::uint64_t size = 0;
};

file_info look_up(const std::string& dir_real, const std::string& file) {
  return weft::to_thread([&]() -> file_info {
    char resolved[PATH_MAX];
    if (::realpath(file.c_str(), resolved) == nullptr)
      return {errno == EACCES ? file_kind::forbidden : file_kind::missing};
    const std::string_view real(resolved);
    if (real != dir_real && !(real.starts_with(dir_real) && real[dir_real.size()] == '/')) return {file_kind::outside};
    struct stat st {};
    if (::stat(resolved, &st) != 0) return {file_kind::missing};
    if (S_ISDIR(st.st_mode)) return {file_kind::directory};
    if (!S_ISREG(st.st_mode)) return {file_kind::other};
    return {file_kind::regular, static_cast<std::uint64_t>(st.st_size)};
  });
}

// streamed_file: a large file's answer, sent in 64 KiB pieces as the client takes
// them (memory per download stays 64 KiB, whatever the file's size), with its
// length known up front (Content-Length).
http::response streamed_file(const std::string& file, std::uint64_t size) {
  auto f = std::make_shared<weft::fs::file>(weft::fs::file::open(file, weft::fs::open_mode::read));
  http::response r;
  r.headers.set("Content-Type", std::string(content_type(file)));
  r.content_length = size;
  r.stream = [f, size](http::body_writer& out) {
    std::string piece(64 * 1024, '\0');
    for (std::uint64_t at = 0; at < size;) {
      const std::size_t n = f->pread(piece, at);
      if (n == 0) break;  // shorter than it was: the server reports it and closes
      out.write(std::string_view(piece).substr(0, std::min<std::uint64_t>(n, size - at)));
      at += n;
    }
  };
  return r;
}

// serve_file answers with DIR + path (index.html for a directory). `dir_real` is
// DIR's real path.
http::response serve_file(const std::string& dir, const std::string& dir_real, std::string_view target_path) {
  const std::optional<std::string> path = decode_path(target_path);
  if (!path) return http::response::text(400, "bad path\n");
  std::string file = dir + *path;
  if (file.ends_with('/')) file += "index.html";
  const file_info info = look_up(dir_real, file);
  switch (info.kind) {
    case file_kind::regular: break;
    case file_kind::directory: {  // "/dir" -> "/dir/", as web servers do
      http::response r = http::response::text(301, "moved\n");
      r.headers.set("Location", std::string(target_path) + "/");
      return r;
    }
    case file_kind::missing:
    case file_kind::outside: return http::response::text(404, "not found\n");
    case file_kind::other:
    case file_kind::forbidden: return http::response::text(403, "forbidden\n");
  }
  try {
    if (info.size > 256 * 1024) return streamed_file(file, info.size);
    return http::response::with_type(200, std::string(content_type(file)), weft::fs::read_file(file));
  } catch (const std::system_error& e) {
    if (e.code() == std::errc::no_such_file_or_directory || e.code() == std::errc::not_a_directory)
      return http::response::text(404, "not found\n");  // gone since we looked
    if (e.code() == std::errc::permission_denied) return http::response::text(403, "forbidden\n");
    throw;  // a 500, and on_error prints it
  }
}

net::tcp_listener listen_on(std::uint16_t port, bool shared) {
  net::listen_options options;
  options.reuse_port = shared;
  std::error_code ec;
  auto listener = net::tcp_listener::bind({net::ip_address::v6_any(), port}, options, ec);
  if (!ec) return listener;
  return net::tcp_listener::bind({net::ip_address::v4_any(), port}, options);
}

bool parse(std::string_view text, auto& value) {
  return !text.empty() && std::from_chars(text.data(), text.data() + text.size(), value).ec == std::errc{};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  std::size_t threads = 1;
  if (args.size() >= 2 && args[0] == "--threads") {
    if (!parse(args[1], threads)) args.clear();
    args.erase(args.begin(), args.begin() + std::min<std::size_t>(2, args.size()));
  }
  std::string tls_chain, tls_key;
  if (args.size() >= 3 && args[0] == "--tls") {
    tls_chain = args[1];
    tls_key = args[2];
    args.erase(args.begin(), args.begin() + 3);
  }
  std::uint16_t port = 0;
  if (args.empty() || args.size() > 2 || !parse(args[0], port)) {
    std::fprintf(stderr, "usage: %s [--threads N] [--tls CERT KEY] PORT [DIR]\n", argv[0]);
    return 2;
  }
  const std::string dir = args.size() == 2 ? std::string(args[1]) : std::string();
  std::string dir_real;
  if (!dir.empty()) {
    char resolved[PATH_MAX];
    if (::realpath(dir.c_str(), resolved) == nullptr) {
      std::fprintf(stderr, "http_server: %s: %s\n", dir.c_str(), std::strerror(errno));
      return 2;
    }
    dir_real = resolved;
  }

  const http::handler route = [&dir, &dir_real](http::request& req) {
    if (req.method != "GET" && req.method != "HEAD") {
      http::response r = http::response::text(405, "method not allowed\n");
      r.headers.set("Allow", "GET, HEAD");
      return r;
    }
    if (req.path() == "/hello") return http::response::text(200, "hello\n");
    if (dir.empty()) return http::response::text(404, "not found\n");
    return serve_file(dir, dir_real, req.path());
  };
  http::server_options options;
  options.shutdown_grace = 1s;
  try {
    if (!tls_chain.empty()) options.tls = net::tls_context::server(tls_chain, tls_key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_server: %s\n", e.what());
    return 1;
  }

  weft::signal_set stop_signals{SIGINT, SIGTERM};  // before any thread starts
  try {
    weft::run_options run_options;
    run_options.threads = threads;
    return weft::run(run_options, [&] {
      const std::size_t schedulers = weft::this_fiber::scheduler_count();
      std::vector<net::tcp_listener> listeners;
      listeners.push_back(listen_on(port, schedulers > 1));
      const auto where = listeners.front().local_endpoint();
      for (std::size_t i = 1; i < schedulers; ++i) listeners.push_back(listen_on(where.port(), true));
      std::printf("http_server: %zu thread%s, listening on %s\n", schedulers, schedulers == 1 ? "" : "s",
                  where.to_string().c_str());
      std::fflush(stdout);

      // Each scheduler serves its own listener; a fiber beside serve closes that
      // listener (on the thread it belongs to) when the signal comes.
      weft::event stopping;
      std::vector<weft::fiber<void>> servers;
      for (std::size_t i = 0; i < schedulers; ++i)
        servers.push_back(weft::spawn({.name = "http server", .on = i},
                                      [&, l = std::move(listeners[i])]() mutable {
                                        auto closer = weft::spawn([&] {
                                          stopping.wait();
                                          l.close();
                                        });
                                        http::serve(l, route, options);
                                        closer.join();
                                      }));

      const int sig = stop_signals.wait();
      std::printf("http_server: %s, stopping\n", strsignal(sig));
      std::fflush(stdout);
      stopping.set();
      for (auto& s : servers) s.join();
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_server: %s\n", e.what());
    return 1;
  }
}
