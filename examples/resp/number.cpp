#include "number.hpp"

#include <climits>

namespace resp {

bool string_to_ll(std::string_view s, long long& value) {
  if (s.empty() || s.size() >= 21) return false;  // LONG_STR_SIZE
  if (s == "0") {
    value = 0;
    return true;
  }
  std::size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative && ++i == s.size()) return false;
  if (s[i] < '1' || s[i] > '9') return false;
  unsigned long long v = static_cast<unsigned long long>(s[i++] - '0');
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const unsigned digit = static_cast<unsigned>(s[i] - '0');
    if (v > ULLONG_MAX / 10 || v * 10 > ULLONG_MAX - digit) return false;
    v = v * 10 + digit;
  }
  if (negative) {
    if (v > static_cast<unsigned long long>(LLONG_MAX) + 1) return false;
    value = static_cast<long long>(0 - v);
  } else {
    if (v > static_cast<unsigned long long>(LLONG_MAX)) return false;
    value = static_cast<long long>(v);
  }
  return true;
}

}  // namespace resp
