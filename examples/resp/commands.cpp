// commands.cpp: each command as redis-server 7.0 runs it (t_string.c, expire.c,
// db.c, server.c), down to the order in which it checks its arguments, since that
// order decides which error a client sees.
#include "commands.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <strings.h>

#include "glob.hpp"
#include "number.hpp"

namespace resp {

namespace {

// up_to_nul: what C's "%s" prints of a string that may hold a NUL.
std::string_view up_to_nul(std::string_view s) { return s.substr(0, s.find('\0')); }

// ---- replies -----------------------------------------------------------------------

void append_integer(std::string& out, long long n) {
  char digits[24];
  out += ':';
  out.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
  out += "\r\n";
}

void append_bulk(std::string& out, std::string_view s) {
  char digits[24];
  out += '$';
  out.append(digits, std::to_chars(digits, digits + sizeof digits, s.size()).ptr);
  out += "\r\n";
  out += s;
  out += "\r\n";
}

void append_array(std::string& out, std::size_t n) {
  char digits[24];
  out += '*';
  out.append(digits, std::to_chars(digits, digits + sizeof digits, n).ptr);
  out += "\r\n";
}

constexpr std::string_view ok = "+OK\r\n";
constexpr std::string_view null_bulk = "$-1\r\n";
constexpr std::string_view not_an_integer = "value is not an integer or out of range";

// ---- arguments ---------------------------------------------------------------------

bool is(const std::string& arg, const char* word) { return strcasecmp(arg.c_str(), word) == 0; }

struct context {
  const std::vector<std::string>& argv;
  keyspace& db;
  std::string& out;
  const char* name;  // the command's canonical (lower-case) name, for error texts
  millis now;

  void error(std::string_view text) { append_error(out, text); }
  void invalid_expire_time() { error(std::string("invalid expire time in '") + name + "' command"); }
  void wrong_arity() { error(std::string("wrong number of arguments for '") + name + "' command"); }
};

// ---- the commands ------------------------------------------------------------------

void ping(context& c) {
  if (c.argv.size() > 2) return c.wrong_arity();
  if (c.argv.size() == 1)
    c.out += "+PONG\r\n";
  else
    append_bulk(c.out, c.argv[1]);
}

void echo(context& c) { append_bulk(c.out, c.argv[1]); }

void get(context& c) {
  if (const keyspace::entry* e = c.db.find(c.argv[1], c.now))
    append_bulk(c.out, e->value);
  else
    c.out += null_bulk;
}

void set(context& c) {
  constexpr unsigned nx = 1, xx = 2, get_old = 4, keepttl = 8, ex = 16, px = 32, exat = 64, pxat = 128;
  unsigned flags = 0;
  const std::string* expire = nullptr;
  const auto& argv = c.argv;
  const auto expire_unit = [&](const std::string& opt) {
    return is(opt, "ex") ? ex : is(opt, "px") ? px : is(opt, "exat") ? exat : is(opt, "pxat") ? pxat : 0u;
  };
  for (std::size_t j = 3; j < argv.size(); ++j) {
    const std::string& opt = argv[j];
    const bool has_next = j + 1 < argv.size();
    const unsigned any_expire = ex | px | exat | pxat;
    if (is(opt, "nx") && !(flags & xx)) {
      flags |= nx;
    } else if (is(opt, "xx") && !(flags & nx)) {
      flags |= xx;
    } else if (is(opt, "get")) {
      flags |= get_old;
    } else if (is(opt, "keepttl") && !(flags & any_expire)) {
      flags |= keepttl;
    } else if (const unsigned unit = expire_unit(opt);
               unit && !(flags & keepttl) && !(flags & (any_expire & ~unit)) && has_next) {
      flags |= unit;
      expire = &argv[++j];
    } else {
      return c.error("syntax error");
    }
  }
  millis expires_at = keyspace::no_expiry;
  if (expire) {
    long long when = 0;
    if (!string_to_ll(*expire, when)) return c.error(not_an_integer);
    const bool seconds = flags & (ex | exat);
    if (when <= 0 || (seconds && when > LLONG_MAX / 1000)) return c.invalid_expire_time();
    if (seconds) when *= 1000;
    if (flags & (ex | px)) {
      if (when > LLONG_MAX - c.now) return c.invalid_expire_time();
      when += c.now;
    }
    expires_at = when;
  }
  keyspace::entry* old = c.db.find(argv[1], c.now);
  if (flags & get_old) {
    if (old)
      append_bulk(c.out, old->value);
    else
      c.out += null_bulk;
  }
  if (((flags & nx) && old) || ((flags & xx) && !old)) {
    if (!(flags & get_old)) c.out += null_bulk;
    return;
  }
  if ((flags & keepttl) && old) expires_at = old->expires_at;
  c.db.put(argv[1], argv[2], expires_at);
  if (!(flags & get_old)) c.out += ok;
}

void del(context& c) {
  long long n = 0;
  for (std::size_t i = 1; i < c.argv.size(); ++i) n += c.db.find(c.argv[i], c.now) && c.db.erase(c.argv[i]);
  append_integer(c.out, n);
}

void exists(context& c) {
  long long n = 0;
  for (std::size_t i = 1; i < c.argv.size(); ++i) n += c.db.find(c.argv[i], c.now) != nullptr;
  append_integer(c.out, n);
}

void incr_by(context& c, long long by) {
  keyspace::entry* e = c.db.find(c.argv[1], c.now);
  long long value = 0;
  if (e && !string_to_ll(e->value, value)) return c.error(not_an_integer);
  if ((by < 0 && value < 0 && by < LLONG_MIN - value) || (by > 0 && value > 0 && by > LLONG_MAX - value))
    return c.error("increment or decrement would overflow");
  value += by;
  if (e)
    e->value = std::to_string(value);  // the key keeps its expiry
  else
    c.db.put(c.argv[1], std::to_string(value), keyspace::no_expiry);
  append_integer(c.out, value);
}
void incr(context& c) { incr_by(c, 1); }
void decr(context& c) { incr_by(c, -1); }

void expire_in(context& c, bool seconds) {
  constexpr unsigned nx = 1, xx = 2, gt = 4, lt = 8;
  unsigned flags = 0;
  for (std::size_t j = 3; j < c.argv.size(); ++j) {
    const std::string& opt = c.argv[j];
    if (is(opt, "nx"))
      flags |= nx;
    else if (is(opt, "xx"))
      flags |= xx;
    else if (is(opt, "gt"))
      flags |= gt;
    else if (is(opt, "lt"))
      flags |= lt;
    else
      return c.error("Unsupported option " + std::string(up_to_nul(opt)));
  }
  if ((flags & nx) && (flags & (xx | gt | lt)))
    return c.error("NX and XX, GT or LT options at the same time are not compatible");
  if ((flags & gt) && (flags & lt)) return c.error("GT and LT options at the same time are not compatible");
  long long when = 0;
  if (!string_to_ll(c.argv[2], when)) return c.error(not_an_integer);
  if (seconds) {
    if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) return c.invalid_expire_time();
    when *= 1000;
  }
  if (when > LLONG_MAX - c.now) return c.invalid_expire_time();
  when += c.now;
  keyspace::entry* e = c.db.find(c.argv[1], c.now);
  if (!e) return append_integer(c.out, 0);
  const millis current = e->expires_at;
  const bool refused = ((flags & nx) && current != keyspace::no_expiry) ||
                       ((flags & xx) && current == keyspace::no_expiry) ||
                       ((flags & gt) && (current == keyspace::no_expiry || when <= current)) ||
                       ((flags & lt) && current != keyspace::no_expiry && when >= current);
  if (refused) return append_integer(c.out, 0);
  if (when <= c.now)
    c.db.erase(c.argv[1]);  // a time already past deletes the key
  else
    c.db.set_expiry(c.argv[1], *e, when);
  append_integer(c.out, 1);
}
void expire(context& c) { expire_in(c, true); }
void pexpire(context& c) { expire_in(c, false); }

void ttl_in(context& c, bool seconds) {
  const keyspace::entry* e = c.db.find(c.argv[1], c.now);
  if (!e) return append_integer(c.out, -2);
  if (e->expires_at == keyspace::no_expiry) return append_integer(c.out, -1);
  const long long left = std::max<long long>(0, e->expires_at - c.now);
  append_integer(c.out, seconds ? (left + 500) / 1000 : left);
}
void ttl(context& c) { ttl_in(c, true); }
void pttl(context& c) { ttl_in(c, false); }

void keys(context& c) {
  std::vector<const std::string*> found;
  // "*" alone is every key, without the matcher (as redis does): stringmatchlen
  // does not match "*" against the empty key.
  const bool all = c.argv[1] == "*";
  c.db.for_each_live(c.now, [&](const std::string& key) {
    if (all || glob_match(c.argv[1], key)) found.push_back(&key);
  });
  append_array(c.out, found.size());
  for (const std::string* key : found) append_bulk(c.out, *key);
}

void mget(context& c) {
  append_array(c.out, c.argv.size() - 1);
  for (std::size_t i = 1; i < c.argv.size(); ++i) {
    if (const keyspace::entry* e = c.db.find(c.argv[i], c.now))
      append_bulk(c.out, e->value);
    else
      c.out += null_bulk;
  }
}

void mset(context& c) {
  if (c.argv.size() % 2 == 0) return c.wrong_arity();
  for (std::size_t i = 1; i < c.argv.size(); i += 2) c.db.put(c.argv[i], c.argv[i + 1], keyspace::no_expiry);
  c.out += ok;
}

void quit(context& c) { c.out += ok; }

// config_get answers the two settings redis-benchmark reads, as a server run with
// --save '' --appendonly no does.
// Names are matched without regard to case, as redis 7 does: a name without glob
// characters is answered in the client's spelling, a pattern's matches in redis's.
void config_get(context& c) {
  static constexpr std::pair<const char*, const char*> settings[] = {{"save", ""}, {"appendonly", "no"}};
  std::vector<std::pair<std::string, const char*>> found;
  const auto add = [&](std::string name, const char* value) {
    const bool seen = std::any_of(found.begin(), found.end(), [&](const auto& f) { return is(f.first, name.c_str()); });
    if (!seen) found.emplace_back(std::move(name), value);
  };
  for (std::size_t i = 2; i < c.argv.size(); ++i) {
    const std::string& asked = c.argv[i];
    const bool pattern = asked.find_first_of("*?[") != std::string::npos;
    std::string lowered = asked;
    for (char& ch : lowered) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    for (const auto& [name, value] : settings) {
      if (!pattern && is(asked, name)) add(asked, value);
      if (pattern && glob_match(lowered, name)) add(name, value);
    }
  }
  append_array(c.out, found.size() * 2);
  for (const auto& [name, value] : found) {
    append_bulk(c.out, name);
    append_bulk(c.out, value);
  }
}

struct command {
  std::string_view name;
  int arity;  // redis's: n exactly, -n at least n (the name counts)
  void (*run)(context&);
};

constexpr command commands[] = {
    {"ping", -1, ping},     {"echo", 2, echo},     {"get", 2, get},         {"set", -3, set},
    {"del", -2, del},       {"exists", -2, exists}, {"incr", 2, incr},      {"decr", 2, decr},
    {"expire", -3, expire}, {"pexpire", -3, pexpire}, {"ttl", 2, ttl},      {"pttl", 2, pttl},
    {"keys", 2, keys},      {"mget", -2, mget},    {"mset", -3, mset},      {"quit", -1, quit},
};

bool arity_ok(int arity, std::size_t argc) {
  return arity > 0 ? argc == static_cast<std::size_t>(arity) : argc >= static_cast<std::size_t>(-arity);
}


void unknown_command(const std::vector<std::string>& argv, std::string& out) {
  std::string args;
  for (std::size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
    const std::size_t room = 128 - args.size();  // redis prints each with "%.*s", room left of 128
    args += '\'';
    args += up_to_nul(argv[i]).substr(0, room);
    args += "' ";
  }
  append_error(out, "unknown command '" + std::string(up_to_nul(argv[0]).substr(0, 128)) +
                        "', with args beginning with: " + args);
}

}  // namespace

void append_error(std::string& out, std::string_view text) {
  // As redis-server's addReplyErrorFormat: CR and LF trimmed from the ends, the
  // ones inside turned into spaces.
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n')) text.remove_suffix(1);
  while (!text.empty() && (text.front() == '\r' || text.front() == '\n')) text.remove_prefix(1);
  const std::size_t start = out.size();
  out += "-ERR ";
  out += text;
  std::replace_if(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(),
                  [](char ch) { return ch == '\r' || ch == '\n'; }, ' ');
  out += "\r\n";
}

bool execute(const std::vector<std::string>& argv, keyspace& db, std::string& out, millis now) {
  // CONFIG is a command with subcommands; only GET is here.
  if (is(argv[0], "config")) {
    if (argv.size() < 2) {
      append_error(out, "wrong number of arguments for 'config' command");
    } else if (!is(argv[1], "get")) {
      append_error(out, "unknown subcommand '" + std::string(up_to_nul(argv[1]).substr(0, 128)) +
                            "'. Try CONFIG HELP.");
    } else if (argv.size() < 3) {
      append_error(out, "wrong number of arguments for 'config|get' command");
    } else {
      context c{argv, db, out, "config|get", now};
      config_get(c);
    }
    return true;
  }
  for (const command& cmd : commands) {
    if (argv[0].size() != cmd.name.size() || !is(argv[0], cmd.name.data())) continue;
    context c{argv, db, out, cmd.name.data(), now};
    if (!arity_ok(cmd.arity, argv.size())) {
      c.wrong_arity();
      return true;
    }
    cmd.run(c);
    return cmd.run != quit;
  }
  unknown_command(argv, out);
  return true;
}

}  // namespace resp
