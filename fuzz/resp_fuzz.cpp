// libFuzzer target for resp_server's request path: the input is what a client
// sends; it is parsed and run command by command against a keyspace, as
// examples/resp_server.cpp does. Beyond the sanitizers' checks: the parser always
// makes progress, and every reply is well-formed RESP2.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "../examples/resp/commands.hpp"
#include "../examples/resp/request_parser.hpp"

namespace {

// skip_reply: the length of the one RESP2 reply at the front of `s`, or 0 if
// it is not one.
std::size_t skip_reply(std::string_view s) {
  const std::size_t eol = s.find("\r\n");
  if (s.empty() || eol == std::string_view::npos) return 0;
  const std::string_view line = s.substr(1, eol - 1);
  std::size_t at = eol + 2;
  switch (s[0]) {
    case '+':
    case '-':
    case ':':
      return line.find_first_of("\r\n") == std::string_view::npos ? at : 0;
    case '$': {
      if (line == "-1") return at;
      const long long n = std::atoll(std::string(line).c_str());
      if (n < 0 || s.size() < at + static_cast<std::size_t>(n) + 2) return 0;
      at += static_cast<std::size_t>(n);
      return s.substr(at, 2) == "\r\n" ? at + 2 : 0;
    }
    case '*': {
      const long long n = std::atoll(std::string(line).c_str());
      for (long long i = 0; i < n; ++i) {
        const std::size_t one = skip_reply(s.substr(at));
        if (one == 0) return 0;
        at += one;
      }
      return at;
    }
    default:
      return 0;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  resp::keyspace db;
  std::vector<std::string> argv;
  std::string out;
  resp::millis now = 1'700'000'000'000;
  for (;;) {
    const resp::parse_result r = resp::parse_request(in, argv);
    if (r.what == resp::parse_result::need_more) break;
    if (r.what == resp::parse_result::protocol_error) {
      resp::append_error(out, r.error);
      break;
    }
    if (r.consumed == 0 || r.consumed > in.size()) std::abort();  // no progress: a server would spin
    in.remove_prefix(r.consumed);
    if (r.what == resp::parse_result::command && !resp::execute(argv, db, out, now++)) break;
  }
  for (std::string_view replies = out; !replies.empty();) {
    const std::size_t one = skip_reply(replies);
    if (one == 0) std::abort();
    replies.remove_prefix(one);
  }
  return 0;
}
