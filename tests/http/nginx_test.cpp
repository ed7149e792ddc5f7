// weft::http::client against Debian's nginx: a server nobody here wrote. The test
// starts nginx with its own configuration in a temporary directory, on a free
// loopback port (and another for HTTPS, with a certificate the test made), serving
// files the test made, and stops it by PID. Skipped when
// nginx is not installed (./run test installs nginx-light).
#include <unistd.h>

#include <weft/http/client.hpp>
#include <weft/structured/gather.hpp>
#include <weft/sync/semaphore.hpp>

#include <optional>
#include <string>

#include "../net/net_test.hpp"
#include "../service.hpp"
#include "../tls_certificates.hpp"

namespace {

using namespace std::chrono_literals;
using namespace weft_test;
namespace http = weft::http;

class NginxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string nginx = find_program("nginx");
    if (nginx.empty()) return;
    dir_.emplace();
    const auto& d = dir_->path();
    dir_->write("www/index.html", "<h1>nginx index</h1>\n");
    dir_->write("www/big.bin", pattern(7, 3 << 20));  // 3 MiB: many reads, and a body past one buffer
    dir_->write("www/notes.txt", std::string(20000, 'n'));
    for (const char* sub : {"www", "www/index.html", "www/big.bin", "www/notes.txt"})
      std::filesystem::permissions(d / sub, std::filesystem::perms(0755));
    port_ = free_loopback_port();
    tls_port_ = free_loopback_port();
    certificates_.emplace();
    const std::string root = d.string();
    std::string conf = "daemon off;\nworker_processes 1;\npid " + root + "/nginx.pid;\nerror_log " + root +
                       "/error.log;\n";
    if (::getuid() == 0) conf += "user nobody nogroup;\n";  // workers must not run as root
    conf += "events { worker_connections 256; }\nhttp {\n  access_log off;\n";
    for (const char* temp : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      conf += std::string("  ") + temp + "_temp_path " + root + "/" + temp + ";\n";
    conf +=
        "  types { text/html html; text/plain txt; application/octet-stream bin; }\n"
        "  gzip on; gzip_types text/plain; gzip_min_length 0;\n"  // gzip answers are chunked
        "  server {\n"
        "    listen 127.0.0.1:" + std::to_string(port_) + ";\n"
        "    root " + root + "/www;\n"
        "    location = /moved { return 301 /index.html; }\n"
        "    location = /loop { return 302 /loop; }\n"
        "    location = /echo { return 200 \"$request_method $content_length\"; }\n"
        "  }\n"
        "  server {\n"
        "    listen 127.0.0.1:" + std::to_string(tls_port_) + " ssl;\n"
        "    ssl_certificate " + certificates_->server_chain() + ";\n"
        "    ssl_certificate_key " + certificates_->server_key() + ";\n"
        "    root " + root + "/www;\n"
        "  }\n}\n";
    dir_->write("nginx.conf", conf);
    nginx_.emplace(std::vector<std::string>{nginx, "-p", root, "-c", root + "/nginx.conf", "-e",
                                            root + "/error.log"},
                   port_, d / "nginx.out");
    if (!nginx_->wait_until_listening()) {
      std::ifstream error_log(d / "error.log");
      failure_ = "nginx did not start: " + nginx_->log() +
                 std::string(std::istreambuf_iterator<char>(error_log), {});
      nginx_.reset();
    }
  }
  static void TearDownTestSuite() {
    nginx_.reset();
    dir_.reset();
    certificates_.reset();
  }
  void SetUp() override {
    if (!failure_.empty()) FAIL() << failure_;
    if (!nginx_) GTEST_SKIP() << "nginx is not installed (./run test installs nginx-light)";
  }

  static std::string url(const std::string& path) { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  static std::string https_url(const std::string& path) {
    return "https://localhost:" + std::to_string(tls_port_) + path;
  }

  static inline std::optional<temp_dir> dir_;
  static inline std::optional<service> nginx_;
  static inline std::uint16_t port_ = 0, tls_port_ = 0;
  static inline std::optional<tls_certificates> certificates_;
  static inline std::string failure_;
};

TEST_F(NginxTest, FilesComeBackWholeOverOneKeptConnection) {
  run_checked([] {
    http::client c;
    for (int i = 0; i < 3; ++i) {
      http::response r = c.get(url("/index.html"), 10s);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "<h1>nginx index</h1>\n");
      EXPECT_EQ(r.headers.value("Content-Type"), "text/html");
      EXPECT_EQ(c.idle_connections(), 1u);
    }
    http::response big = c.get(url("/big.bin"), 20s);
    EXPECT_EQ(big.status, 200);
    EXPECT_TRUE(big.body == pattern(7, 3 << 20)) << "big.bin differs, " << big.body.size() << " bytes";
    EXPECT_EQ(c.idle_connections(), 1u);
  });
}

TEST_F(NginxTest, HttpsFilesComeBackWholeOverOneKeptSession) {
  run_checked([] {
    http::client_options o;
    o.tls = weft::net::tls_context::client();
    o.tls->trust(certificates_->ca());
    http::client c(std::move(o));
    for (int i = 0; i < 3; ++i) {
      http::response r = c.get(https_url("/index.html"), 10s);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "<h1>nginx index</h1>\n");
      EXPECT_EQ(c.idle_connections(), 1u);
    }
    http::response big = c.get(https_url("/big.bin"), 20s);
    EXPECT_TRUE(big.body == pattern(7, 3 << 20)) << "big.bin differs, " << big.body.size() << " bytes";
    EXPECT_EQ(c.idle_connections(), 1u);
    // The same server by its IP address, which the certificate also names.
    const std::string by_ip = "https://127.0.0.1:" + std::to_string(tls_port_) + "/index.html";
    EXPECT_EQ(c.get(by_ip, 10s).status, 200);
  });
}

TEST_F(NginxTest, StreamedBodyArrivesInPiecesAndHeadHasNone) {
  run_checked([] {
    http::client c;
    std::string streamed;
    int pieces = 0;
    http::response r = c.send(http::request_builder("GET", url("/big.bin")), [&](std::string_view piece) {
      streamed.append(piece);
      ++pieces;
    }, 20s);
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.body.empty());
    EXPECT_TRUE(streamed == pattern(7, 3 << 20));
    EXPECT_GT(pieces, 1);

    http::response head = c.head(url("/big.bin"), 10s);
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.headers.value("Content-Length"), std::to_string(3 << 20));
    EXPECT_TRUE(head.body.empty());
    EXPECT_EQ(c.get(url("/index.html"), 10s).body, "<h1>nginx index</h1>\n");  // same connection still in step
    EXPECT_EQ(c.idle_connections(), 1u);
  });
}

TEST_F(NginxTest, ChunkedGzipAnswerIsRead) {
  run_checked([] {
    http::client c;
    http::response r =
        c.send(http::request_builder("GET", url("/notes.txt")).header("Accept-Encoding", "gzip"), 10s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.value("Transfer-Encoding"), "chunked");
    EXPECT_EQ(r.headers.value("Content-Encoding"), "gzip");
    ASSERT_GE(r.body.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(r.body[0]), 0x1f);  // gzip's magic number
    EXPECT_EQ(static_cast<unsigned char>(r.body[1]), 0x8b);
    EXPECT_LT(r.body.size(), 1000u);  // 20000 times 'n' compresses well
  });
}

TEST_F(NginxTest, StatusesRedirectsAndPost) {
  run_checked([] {
    http::client plain;
    EXPECT_EQ(plain.get(url("/missing"), 10s).status, 404);
    http::response moved = plain.get(url("/moved"), 10s);
    EXPECT_EQ(moved.status, 301);
    EXPECT_NE(moved.headers.value("Location").find("/index.html"), std::string_view::npos);
    EXPECT_EQ(plain.post(url("/echo"), "12345", {{"Content-Type", "text/plain"}}, 10s).body, "POST 5");

    http::client following({.follow_redirects = true, .max_redirects = 3});
    http::response r = following.get(url("/moved"), 10s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "<h1>nginx index</h1>\n");
    try {
      following.get(url("/loop"), 10s);
      ADD_FAILURE() << "a redirect loop must end in too_many_redirects";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), http::error::too_many_redirects);
    }
  });
}

TEST_F(NginxTest, ManyFibersShareThePool) {
  run_checked([] {
    http::client c;
    weft::semaphore in_flight(8);
    std::vector<std::function<std::size_t()>> fetches;
    for (int i = 0; i < 40; ++i)
      fetches.push_back([&, i] {
        weft::semaphore_guard slot(in_flight);
        return c.get(url(i % 2 ? "/index.html" : "/notes.txt"), 20s).body.size();
      });
    const std::vector<std::size_t> sizes = weft::gather(fetches);
    for (std::size_t i = 0; i < sizes.size(); ++i) EXPECT_EQ(sizes[i], i % 2 ? 21u : 20000u) << i;
    EXPECT_LE(c.idle_connections(), 8u);
    EXPECT_GE(c.idle_connections(), 1u);
  });
}

}  // namespace
