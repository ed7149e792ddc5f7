// keyspace.hpp: the server's keys, each with a value and an optional expiry.
//
// Expiry as redis-server does it: a key past its time is gone for every command
// (removed when one looks it up), and sweep() removes the ones nobody looks at.
// One scheduler owns the keyspace: its fibers use it without locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace resp {

using millis = long long;  // a Unix time in milliseconds, as redis keeps expiries

inline millis now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class keyspace {
 public:
  static constexpr millis no_expiry = -1;
  struct entry {
    std::string value;
    millis expires_at = no_expiry;
  };

  // find: the live entry for `key`, or nullptr (an expired one is removed first).
  entry* find(const std::string& key, millis now) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return nullptr;
    if (expired(it->second, now)) {
      keys_.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  entry& put(const std::string& key, std::string value, millis expires_at) {
    entry& e = keys_[key];
    e.value = std::move(value);
    e.expires_at = expires_at;
    return e;
  }
  bool erase(const std::string& key) { return keys_.erase(key) > 0; }

  // for_each_live calls f(key) for every key not expired at `now`.
  template <class F>
  void for_each_live(millis now, F&& f) const {
    for (const auto& [key, e] : keys_)
      if (!expired(e, now)) f(key);
  }

  // sweep removes every expired key; returns how many.
  std::size_t sweep(millis now) {
    return std::erase_if(keys_, [now](const auto& item) { return expired(item.second, now); });
  }

 private:
  static bool expired(const entry& e, millis now) { return e.expires_at != no_expiry && e.expires_at <= now; }
  std::unordered_map<std::string, entry> keys_;
};

}  // namespace resp
