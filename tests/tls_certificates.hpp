// tls_certificates.hpp: certificates a test makes for itself with the openssl
// command (Debian's `openssl` package): a CA, a server certificate it signed for
// "localhost" and 127.0.0.1, and a self-signed one nobody trusts. Valid for two days,
// in a temporary directory removed at the end.
//
// Plain blocking code: make them in the test body before weft::run.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "service.hpp"

namespace weft_test {

class tls_certificates {
 public:
  tls_certificates() {
    if (find_program("openssl").empty()) throw std::runtime_error("the openssl command is not installed");
    dir_.write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    const std::string ec_key = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    run("openssl req -x509" + ec_key + " -keyout ca.key -out ca.pem -days 2 -subj /CN=weft-test-ca");
    run("openssl req" + ec_key + " -keyout server.key -out server.csr -subj /CN=localhost");
    run("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
        " -extfile server.ext -out server.pem");
    run("openssl req -x509" + ec_key + " -keyout self.key -out self.pem -days 2 -subj /CN=localhost"
        " -addext subjectAltName=DNS:localhost,IP:127.0.0.1");
  }

  std::string ca() const { return file("ca.pem"); }
  std::string server_chain() const { return file("server.pem"); }
  std::string server_key() const { return file("server.key"); }
  std::string self_signed_chain() const { return file("self.pem"); }
  std::string self_signed_key() const { return file("self.key"); }

 private:
  std::string file(const char* name) const { return (dir_.path() / name).string(); }
  void run(const std::string& command) const {
    const std::string line = "cd '" + dir_.path().string() + "' && " + command + " >openssl.log 2>&1";
    if (std::system(line.c_str()) != 0) throw std::runtime_error("failed: " + command + " (see openssl.log)");
  }
  temp_dir dir_;
};

}  // namespace weft_test
