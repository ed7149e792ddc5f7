// glob.hpp: redis's glob-style patterns (KEYS, CONFIG GET): * ? [abc] [^a-z] \x.
#pragma once

#include <string>

namespace resp {

// glob_match: does `text` match `pattern` as redis's stringmatchlen decides?
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace resp
