// request_parser.cpp: redis-server's request grammar (networking.c), one request
// at a time from the front of the buffer.
#include "request_parser.hpp"

#include <cctype>
#include <algorithm>
#include <climits>

#include "number.hpp"

namespace resp {

namespace {

constexpr std::size_t inline_max = 64 * 1024;             // PROTO_INLINE_MAX_SIZE
constexpr long long bulk_max = 512LL * 1024 * 1024;       // proto-max-bulk-len's default

parse_result fail(std::string text) { return {parse_result::protocol_error, 0, "Protocol error: " + text}; }
parse_result need_more() { return {parse_result::need_more, 0, {}}; }
parse_result done(parse_result::kind what, std::size_t consumed) { return {what, consumed, {}}; }

// c_find finds `ch` from `at` as redis-server's strchr on its query buffer does: a
// NUL byte ends the search (a C string), so a line with a NUL before its end is
// never complete there, and the client waits (up to the size limits).
std::size_t c_find(std::string_view buffer, char ch, std::size_t at = 0) {
  const std::size_t found = buffer.find(ch, at);
  return buffer.substr(0, found).find('\0', at) == std::string_view::npos ? found : std::string_view::npos;
}

// line_end: where the line starting at `at` ends (its '\r'), or npos while its
// "\r\n" has not all arrived.
std::size_t line_end(std::string_view buffer, std::size_t at) {
  const std::size_t cr = c_find(buffer, '\r', at);
  if (cr == std::string_view::npos || cr + 1 >= buffer.size()) return std::string_view::npos;  // needs the \n too
  return cr;
}

parse_result parse_multibulk(std::string_view buffer, std::vector<std::string>& argv, parse_progress& progress) {
  std::size_t at = progress.at;
  long long count = progress.count;
  long long i = progress.next;
  progress = {};
  if (count < 0) {  // a new request: its "*count" line first
    const std::size_t cr = line_end(buffer, 0);
    if (cr == std::string_view::npos) {
      if (c_find(buffer, '\r') == std::string_view::npos && buffer.size() > inline_max)
        return fail("too big mbulk count string");
      return need_more();
    }
    if (!string_to_ll(buffer.substr(1, cr - 1), count) || count > INT_MAX) return fail("invalid multibulk length");
    at = cr + 2;
    if (count <= 0) return done(parse_result::empty, at);
    // Sized once and assigned in place: the strings keep their capacity from one
    // command to the next.
    argv.resize(static_cast<std::size_t>(std::min<long long>(count, 1024)));
    i = 0;
  }
  for (; i < count; ++i) {
    const std::size_t cr = line_end(buffer, at);
    if (cr == std::string_view::npos) {
      if (c_find(buffer, '\r', at) == std::string_view::npos && buffer.size() - at > inline_max)
        return fail("too big bulk count string");
      progress = {at, count, i};
      return need_more();
    }
    if (buffer[at] != '$') return fail(std::string("expected '$', got '") + buffer[at] + "'");
    long long length = 0;
    if (!string_to_ll(buffer.substr(at + 1, cr - at - 1), length) || length < 0 || length > bulk_max)
      return fail("invalid bulk length");
    // The bulk and its "\r\n" (which redis-server skips without looking at).
    const std::size_t bulk_at = cr + 2;
    if (buffer.size() - bulk_at < static_cast<std::size_t>(length) + 2) {
      progress = {at, count, i};
      return need_more();
    }
    const std::string_view bulk = buffer.substr(bulk_at, static_cast<std::size_t>(length));
    if (static_cast<std::size_t>(i) < argv.size())
      argv[static_cast<std::size_t>(i)].assign(bulk);
    else
      argv.emplace_back(bulk);
    at = bulk_at + static_cast<std::size_t>(length) + 2;
  }
  return done(parse_result::command, at);
}

parse_result parse_inline(std::string_view buffer, std::vector<std::string>& argv) {
  const std::size_t newline = c_find(buffer, '\n');
  if (newline == std::string_view::npos) {
    if (buffer.size() > inline_max) return fail("too big inline request");
    return need_more();
  }
  std::size_t length = newline;
  if (length > 0 && buffer[length - 1] == '\r') --length;
  argv.clear();
  if (!split_inline(buffer.substr(0, length), argv)) return fail("unbalanced quotes in request");
  return done(argv.empty() ? parse_result::empty : parse_result::command, newline + 1);
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
int hex_value(char c) { return c <= '9' ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10); }
bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

}  // namespace

parse_result parse_request(std::string_view buffer, std::vector<std::string>& argv, parse_progress& progress) {
  if (buffer.empty()) return need_more();
  return buffer.front() == '*' ? parse_multibulk(buffer, argv, progress) : parse_inline(buffer, argv);
}

parse_result parse_request(std::string_view buffer, std::vector<std::string>& argv) {
  parse_progress fresh;
  return parse_request(buffer, argv, fresh);
}

bool split_inline(std::string_view line, std::vector<std::string>& argv) {
  // sdssplitargs reads a NUL-terminated string: a NUL ends the line there.
  line = line.substr(0, line.find('\0'));
  std::size_t p = 0;
  const auto at = [&](std::size_t i) { return i < line.size() ? line[i] : '\0'; };
  for (;;) {
    while (p < line.size() && is_space(line[p])) ++p;
    if (p == line.size()) return true;
    std::string word;
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      const char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
          word += static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          const char e = at(p);
          word += e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
        } else if (c == '"') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;  // closing quote must end the word
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated
        } else {
          word += c;
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          word += '\'';
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          word += c;
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        word += c;
      }
      if (c != '\0') ++p;
    }
    argv.push_back(std::move(word));
  }
}

}  // namespace resp
