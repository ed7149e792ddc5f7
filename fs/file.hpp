// file.hpp: files without blocking the scheduler (aiofiles for weft).
//
//   std::string config = weft::fs::read_file("/etc/app.conf");
//   weft::fs::write_file("out.txt", report, 2s);           // at most 2 s
//
//   auto f = weft::fs::file::open("data.bin", weft::fs::open_mode::read);
//   std::vector<char> buf(64 * 1024);
//   while (std::size_t n = f.read(buf)) consume(buf.data(), n);  // 0: end of file
//
// Regular files are always "ready" to epoll, so weft does not wait for them in the
// reactor: every call here runs the system call on weft's pool of threads for
// blocking calls (weft::to_thread's), and only the calling fiber waits. The
// scheduler runs its other fibers meanwhile.
//
// Deadlines and cancellation (runtime/error.hpp): every call takes an optional
// last argument, a duration or a time point (net::deadline). When it passes, the
// call throws weft::timeout_error; a deadline scope does the same, a cancellation
// throws cancelled_error. The fiber stops waiting at once; the system call itself
// cannot be interrupted and finishes on its pool thread, then its effect stands
// (bytes written stay written) and its result is dropped. That is safe because the
// pool never touches the caller's memory: reads land in a buffer of the call's own
// and are copied out only to a caller still waiting, writes are copied first; and
// the descriptor stays open until every call on it has finished, even if the file
// is closed meanwhile, so a late call can never reach a reused descriptor number.
//
// A FIFO (or a terminal or pipe reached by path) may make a call wait for ever:
// an open for the other end, a read for a writer that stays silent. Such waits
// poll in 50 ms slices on the pool thread and stop once the caller has stopped
// waiting, so a timed-out call frees its pool thread within 50 ms (a blocked
// system call on a regular file cannot be stopped, but does not block for long).
// Such a descriptor stays non-blocking (O_NONBLOCK, as native_handle() shows).
//
// Errors: std::system_error in generic_category with the errno, its what() naming
// the call and the path ("weft::fs::read_file /etc/app.conf: No such file or
// directory"); timeout_error names them too. EINTR is retried. From fibers only
// (errc::not_in_fiber).
// Thread rules: a file may be used by fibers of any scheduler, one call at a time
// (as a std::FILE*, calls on one file from several fibers at once are not ordered).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <weft/net/buffer.hpp>
#include <weft/net/deadline.hpp>

namespace weft::fs {

using net::const_buffer;
using net::deadline;
using net::mutable_buffer;

// read_file returns the whole contents of `path`.
std::string read_file(const std::string& path, deadline d = {});
// write_file makes `path` hold exactly `data` (created with `permissions` if it does
// not exist, truncated if it does). Not fsync'ed: use file::sync for that.
void write_file(const std::string& path, std::string_view data, deadline d = {}, mode_t permissions = 0644);

enum class open_mode {
  read,        // O_RDONLY
  write,       // O_WRONLY | O_CREAT | O_TRUNC
  append,      // O_WRONLY | O_CREAT | O_APPEND
  read_write,  // O_RDWR | O_CREAT
};

class file {
 public:
  file() noexcept = default;  // closed
  // open opens `path` (close-on-exec). Opening a FIFO waits for its other end
  // (for reading: until a writer has written or closed), on the pool: only this
  // fiber waits.
  static file open(const std::string& path, open_mode mode, deadline d = {}, mode_t permissions = 0644);

  file(file&&) noexcept = default;
  file& operator=(file&&) noexcept = default;
  ~file() = default;  // closes once no call on the descriptor is still running

  bool is_open() const noexcept { return fd_ != nullptr; }
  // The descriptor, -1 when closed. Valid while the file is open.
  int native_handle() const noexcept;
  const std::string& path() const noexcept { return path_; }

  // read reads up to buf.size bytes at the file position and advances it: fewer at
  // the end of the file (a short read), 0 at the end.
  std::size_t read(mutable_buffer buf, deadline d = {});
  // write writes all of data at the file position (at the end in append mode),
  // retrying short writes; returns data.size.
  std::size_t write(const_buffer data, deadline d = {});
  // pread and pwrite do the same at `offset`, without moving the file position.
  // On a file opened with open_mode::append, Linux appends a pwrite at the end
  // whatever the offset (pwrite(2), BUGS): open it read_write to write in place.
  std::size_t pread(mutable_buffer buf, std::uint64_t offset, deadline d = {});
  std::size_t pwrite(const_buffer data, std::uint64_t offset, deadline d = {});
  // sync waits until the file's data and metadata are on the device (fsync).
  void sync(deadline d = {});
  // size is the file's current size in bytes (fstat).
  std::uint64_t size(deadline d = {});
  // close closes the file; a later call throws errc::invalid_argument. The
  // descriptor itself closes once the calls still running on it have finished.
  void close() noexcept { fd_.reset(); }

  struct descriptor;  // shared by the file and the calls running on it

 private:
  file(std::shared_ptr<descriptor> fd, std::string path) noexcept : fd_(std::move(fd)), path_(std::move(path)) {}
  const std::shared_ptr<descriptor>& checked(const char* call) const;
  std::size_t read_at(mutable_buffer buf, off_t offset, deadline d, const char* call);

  std::shared_ptr<descriptor> fd_;
  std::string path_;
};

}  // namespace weft::fs
