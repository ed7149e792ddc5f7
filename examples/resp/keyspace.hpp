// keyspace.hpp: the server's keys, each with a value and an optional expiry.
//
// Expiry as redis-server does it: a key past its time is gone for every command
// (removed when one looks it up), and sweep() removes the ones nobody looks at,
// found through an index of the keys that have an expiry.
// One scheduler owns the keyspace: its fibers use it without locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

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
    millis expires_at = no_expiry;  // change it with set_expiry (the index follows)
  };

  // find: the live entry for `key`, or nullptr (an expired one is removed first).
  entry* find(const std::string& key, millis now) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return nullptr;
    if (expired(it->second, now)) {
      erase(it);
      return nullptr;
    }
    return &it->second;
  }
  entry& put(const std::string& key, std::string value, millis expires_at) {
    entry& e = keys_[key];
    e.value = std::move(value);
    set_expiry(key, e, expires_at);
    return e;
  }
  void set_expiry(const std::string& key, entry& e, millis expires_at) {
    if (e.expires_at != no_expiry) expiries_.erase({e.expires_at, key});
    e.expires_at = expires_at;
    if (expires_at != no_expiry) expiries_.emplace(expires_at, key);
  }
  bool erase(const std::string& key) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return false;
    erase(it);
    return true;
  }

  // for_each_live calls f(key) for every key not expired at `now`.
  template <class F>
  void for_each_live(millis now, F&& f) const {
    for (const auto& [key, e] : keys_)
      if (!expired(e, now)) f(key);
  }

  // sweep removes expired keys, at most `limit` of them (so that one call never
  // holds the scheduler for long); returns how many. It looks only at keys with an
  // expiry, in time order, not at the whole keyspace: an idle server with millions
  // of keys and no expiries costs nothing here.
  std::size_t sweep(millis now, std::size_t limit) {
    std::size_t removed = 0;
    while (removed < limit && !expiries_.empty() && expiries_.begin()->first <= now) {
      keys_.erase(expiries_.begin()->second);
      expiries_.erase(expiries_.begin());
      ++removed;
    }
    return removed;
  }

 private:
  using key_iterator = std::unordered_map<std::string, entry>::iterator;
  void erase(key_iterator it) {
    if (it->second.expires_at != no_expiry) expiries_.erase({it->second.expires_at, it->first});
    keys_.erase(it);
  }
  static bool expired(const entry& e, millis now) { return e.expires_at != no_expiry && e.expires_at <= now; }
  std::unordered_map<std::string, entry> keys_;
  std::set<std::pair<millis, std::string>> expiries_;  // (expires_at, key) of every key that has one
};

}  // namespace resp
