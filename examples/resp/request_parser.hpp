// request_parser.hpp: commands as redis-server reads them from a client.
//
// Why not hiredis's reader: it parses *replies* (any RESP type, nested), while a
// server reads requests, which redis-server parses with its own, narrower grammar
// (networking.c, processMultibulkBuffer and processInlineBuffer): an array of bulk
// strings, or an inline line of space-separated, optionally quoted words, each
// malformation answered with a specific "Protocol error: ..." text. Replies
// byte-identical to redis-server's need that grammar, so this follows it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace resp {

struct parse_result {
  enum kind { command, empty, need_more, protocol_error } what;
  std::size_t consumed = 0;  // bytes of the buffer this result used (command, empty)
  std::string error;         // for protocol_error: the text after "ERR "
};

// parse_progress is how far an incomplete array request got: the next call with
// the same buffer, grown, resumes there instead of parsing it all again (a command
// of millions of arguments arrives in thousands of reads). It holds positions in
// the buffer, and argv holds the arguments read so far: keep both as they are
// between the calls, and consume nothing from the buffer until a result other
// than need_more.
struct parse_progress {
  std::size_t at = 0;     // where the next argument's "$" line starts
  long long count = -1;   // the array's length; -1: no request in progress
  long long next = 0;     // the next argument's index
};

// parse_request reads one request from the front of `buffer` into `argv`:
// command (argv filled), empty (a blank line or "*0": nothing to run), need_more
// (incomplete; call again with more bytes), protocol_error (answer it, then close).
parse_result parse_request(std::string_view buffer, std::vector<std::string>& argv, parse_progress& progress);
// The same, parsing from the start every time.
parse_result parse_request(std::string_view buffer, std::vector<std::string>& argv);

// split_inline splits an inline request line the way redis's sdssplitargs does
// ("quoted \x41rgs" 'single'); false for unbalanced quotes.
bool split_inline(std::string_view line, std::vector<std::string>& argv);

}  // namespace resp
