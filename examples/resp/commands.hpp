// commands.hpp: the commands resp_server answers, with redis-server 7's replies.
//
// PING ECHO GET SET(EX PX EXAT PXAT NX XX GET KEEPTTL) DEL EXISTS INCR DECR
// EXPIRE PEXPIRE(NX XX GT LT) TTL PTTL KEYS MGET MSET QUIT, and CONFIG GET (which
// redis-benchmark asks for at start). Errors are the texts redis-server sends:
// unknown command, wrong number of arguments, not an integer, overflow, syntax.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keyspace.hpp"

namespace resp {

// execute runs one command and appends its RESP2 reply to `out`; returns false
// when the connection must close after the reply (QUIT). `now` is the time the
// command runs at (for expiry; one reading serves a whole pipelined batch).
bool execute(const std::vector<std::string>& argv, keyspace& db, std::string& out, millis now);

// append_error appends "-ERR <text>\r\n", with CR and LF in the text turned into
// spaces as redis does (a reply line cannot hold them).
void append_error(std::string& out, std::string_view text);

}  // namespace resp
