// glob.cpp: redis's stringmatchlen (util.c), case-sensitive, including its
// cut-off for patterns like "a*a*a*b" (once a '*' has tried every tail, a longer
// match cannot succeed either) that keeps KEYS from exponential time, and its cap
// on nesting: a '*' that matches recurses, and past 1,000 levels the pattern does
// not match (as in redis 7, which answers `*0`); without it, KEYS "*a*a...b" with
// tens of thousands of stars overflowed the connection fiber's stack and took the
// server down.
#include "glob.hpp"

#include <utility>

namespace resp {

namespace {

// p and s point into NUL-terminated strings (std::string's), as redis's do: the
// code looks one past a pattern's end in two places, where the NUL stops it.
constexpr int max_nesting = 1000;  // redis's

bool match(const char* p, long plen, const char* s, long slen, bool& give_up, int nesting) {
  if (nesting > max_nesting) return false;
  while (plen > 0 && slen > 0) {
    switch (p[0]) {
      case '*':
        while (plen > 1 && p[1] == '*') {
          ++p;
          --plen;
        }
        if (plen == 1) return true;
        while (slen > 0) {
          if (match(p + 1, plen - 1, s, slen, give_up, nesting + 1)) return true;
          if (give_up) return false;
          ++s;
          --slen;
        }
        give_up = true;
        return false;
      case '?':
        ++s;
        --slen;
        break;
      case '[': {
        ++p;
        --plen;
        const bool negate = p[0] == '^';
        if (negate) {
          ++p;
          --plen;
        }
        bool matched = false;
        for (;;) {
          if (p[0] == '\\' && plen >= 2) {
            ++p;
            --plen;
            if (p[0] == s[0]) matched = true;
          } else if (p[0] == ']') {
            break;
          } else if (plen == 0) {
            --p;
            ++plen;
            break;
          } else if (plen >= 3 && p[1] == '-') {
            int start = p[0], end = p[2];
            if (start > end) std::swap(start, end);
            p += 2;
            plen -= 2;
            if (s[0] >= start && s[0] <= end) matched = true;
          } else if (p[0] == s[0]) {
            matched = true;
          }
          ++p;
          --plen;
        }
        if (negate) matched = !matched;
        if (!matched) return false;
        ++s;
        --slen;
        break;
      }
      case '\\':
        if (plen >= 2) {
          ++p;
          --plen;
        }
        [[fallthrough]];
      default:
        if (p[0] != s[0]) return false;
        ++s;
        --slen;
        break;
    }
    ++p;
    --plen;
    if (slen == 0) {
      while (plen > 0 && *p == '*') {
        ++p;
        --plen;
      }
      break;
    }
  }
  return plen == 0 && slen == 0;
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& text) {
  bool give_up = false;
  return match(pattern.c_str(), static_cast<long>(pattern.size()), text.c_str(), static_cast<long>(text.size()),
               give_up, 0);
}

}  // namespace resp
