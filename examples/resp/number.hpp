// number.hpp: integers as redis-server reads and writes them.
#pragma once

#include <string_view>

namespace resp {

// string_to_ll is redis's string2ll (util.c): the whole text must be a base-10
// long long with no sign but '-', no leading zeros, spaces or "-0"; false otherwise.
bool string_to_ll(std::string_view text, long long& value);

}  // namespace resp
