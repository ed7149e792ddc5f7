#include <weft/runtime/unhandled_exception.hpp>

#include <cstdio>
#include <mutex>
#include <string>

#include <weft/runtime/detail/fiber_record.hpp>
#include <weft/runtime/error.hpp>

namespace weft {
namespace {

std::mutex handler_mutex;
unhandled_exception_handler installed_handler;  // guarded by handler_mutex

void print_to_stderr(fiber_id id, std::string_view name, std::exception_ptr error) {
  const std::string what = describe_exception(error);
  // The fiber as the deadlock and stack overflow reports name it: fiber 7 "worker".
  const std::string quoted_name = name.empty() ? std::string() : " \"" + std::string(name) + "\"";
  std::fprintf(stderr, "weft: exception in fiber %llu%s was never retrieved: %s\n",
               static_cast<unsigned long long>(id), quoted_name.c_str(), what.c_str());
}

}  // namespace

unhandled_exception_handler set_unhandled_exception_handler(unhandled_exception_handler handler) {
  std::lock_guard lock(handler_mutex);
  std::swap(installed_handler, handler);
  return handler;
}

std::string describe_exception(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

}  // namespace weft

namespace weft::detail {

void report_unhandled(fiber_id id, std::string_view name, std::exception_ptr error) noexcept {
  if (!error) return;
  try {
    try {
      std::rethrow_exception(error);
    } catch (const cancelled_error&) {
      return;  // the expected end of a cancelled fiber
    } catch (...) {
    }
    unhandled_exception_handler handler;
    {
      std::lock_guard lock(handler_mutex);
      handler = installed_handler;
    }
    if (name.empty()) name = "<unnamed>";
    if (handler)
      handler(id, name, error);
    else
      print_to_stderr(id, name, error);
  } catch (...) {
    std::fputs("weft: the unhandled exception handler itself threw\n", stderr);
  }
}

void report_unretrieved(const fiber_record& rec) noexcept { report_unhandled(rec.id_, rec.name_, rec.error_); }

}  // namespace weft::detail
