#include <weft/fs/file.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <weft/runtime/detail/call_blocking.hpp>
#include <weft/runtime/error.hpp>

namespace weft::fs {

// The open descriptor; closed when the file and every call running on it let go.
struct file::descriptor {
  int fd;
  explicit descriptor(int f) noexcept : fd(f) {}
  ~descriptor() { ::close(fd); }
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
};

namespace {

using weft::detail::blocking_stop;

// named: "weft::fs::read_file /etc/app.conf", what errors say.
std::string named(const char* call, const std::string& path) {
  return std::string(call) + " " + (path.empty() ? std::string("(empty path)") : path);
}

[[noreturn]] void throw_errno(int err, const char* call, const std::string& path) {
  throw std::system_error(err, std::generic_category(), named(call, path));
}

// throw_io_errno is throw_errno for a read or write on `fd`; EBADF from a file
// opened without that access says so (it is the caller's mistake, not the OS's).
[[noreturn]] void throw_io_errno(int err, int fd, bool writing, const char* call, const std::string& path) {
  if (err == EBADF) {
    const int access = ::fcntl(fd, F_GETFL) & O_ACCMODE;
    if (writing && access == O_RDONLY)
      throw std::system_error(err, std::generic_category(), named(call, path) + " (opened with open_mode::read)");
    if (!writing && access == O_WRONLY)
      throw std::system_error(err, std::generic_category(),
                              named(call, path) + " (opened for writing only: open_mode::write or append)");
  }
  throw_errno(err, call, path);
}

// off_pool runs fn() on the blocking pool and returns its result; the deadline
// throws timeout_error (the convention for calls that produce something).
template <class F>
auto off_pool(F fn, deadline d, const char* call, const std::string& path) {
  auto value = weft::detail::call_blocking(std::move(fn), d.at, call);
  if (!value) throw timeout_error(named(call, path).c_str());
  return std::move(*value);
}

// retry_eintr calls op() until it does not fail with EINTR (pool threads block
// every signal, but a debugger or a library's own handler may still interrupt).
template <class Op>
auto retry_eintr(Op op) {
  for (;;) {
    auto r = op();
    if (r >= 0 || errno != EINTR) return r;
  }
}

// A FIFO (or a pipe or terminal reached by path) can make a call wait for ever:
// an open for the other end, a read for a writer that stays silent, a write for a
// reader that never reads. A pool thread blocked so would stay blocked after its
// caller stopped waiting, and a few such calls would fill the pool for good (then
// every fs call and to_thread of the process only queues). So such a descriptor
// is kept non-blocking, and where it would block the pool thread waits in
// poll(2) slices of stop_look_ms, giving up once nobody waits for the call
// (blocking_stop). Regular files never block so and are left blocking.
constexpr int stop_look_ms = 50;

// wait_ready: polls `fd` for `events` until it is ready (true), or the caller
// has stopped waiting (false). Pool thread.
bool wait_ready(int fd, short events, const blocking_stop& stop) {
  for (;;) {
    if (stop.requested()) return false;
    pollfd p{fd, events, 0};
    if (::poll(&p, 1, stop_look_ms) > 0) return true;
  }
}

// open_stoppable is open(2) that waits for a FIFO's other end as described above:
// -1 with errno set on failure, ECANCELED once nobody waits. Only a FIFO is opened
// O_NONBLOCK (so that an open for writing fails with ENXIO while it has no reader,
// instead of blocking): on a regular file O_NONBLOCK changes open(2) itself (a
// leased file answers EAGAIN at once instead of waiting for the lease to break).
// A terminal or other character device is made non-blocking once open. Pool thread.
int open_stoppable(const std::string& path, int flags, mode_t permissions, const blocking_stop& stop) {
  struct stat before {};
  const bool fifo = ::stat(path.c_str(), &before) == 0 && S_ISFIFO(before.st_mode);
  int fd;
  while ((fd = retry_eintr([&] { return ::open(path.c_str(), flags | (fifo ? O_NONBLOCK : 0), permissions); })) < 0) {
    if (!fifo || errno != ENXIO || (flags & O_ACCMODE) != O_WRONLY) return -1;
    if (stop.requested()) {
      errno = ECANCELED;
      return -1;
    }
    ::poll(nullptr, 0, stop_look_ms);  // no reader yet: look again
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISREG(st.st_mode)) return fd;
  if (!S_ISFIFO(st.st_mode)) {
    if (S_ISCHR(st.st_mode)) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);  // (replaced by a FIFO since the stat)
  if ((flags & O_ACCMODE) == O_RDONLY && !wait_ready(fd, POLLIN, stop)) {
    // A FIFO opened for reading waits for a writer (its first bytes, or its
    // close). Until one has come, a non-blocking read would say "end of file".
    ::close(fd);
    errno = ECANCELED;
    return -1;
  }
  return fd;
}

// read_stoppable is read(2) or pread(2) (offset >= 0) that waits as described
// above. Pool thread.
ssize_t read_stoppable(int fd, char* into, std::size_t size, off_t offset, const blocking_stop& stop) {
  for (;;) {
    const ssize_t n = retry_eintr([&] { return offset < 0 ? ::read(fd, into, size) : ::pread(fd, into, size, offset); });
    if (n >= 0 || errno != EAGAIN) return n;
    if (!wait_ready(fd, POLLIN, stop)) {
      errno = ECANCELED;
      return -1;
    }
  }
}

int open_flags(open_mode mode) {
  switch (mode) {
    case open_mode::read: return O_RDONLY;
    case open_mode::write: return O_WRONLY | O_CREAT | O_TRUNC;
    case open_mode::append: return O_WRONLY | O_CREAT | O_APPEND;
    case open_mode::read_write: return O_RDWR | O_CREAT;
  }
  throw error(errc::invalid_argument, "weft::fs::file::open", "unknown open_mode");
}

// write_fully writes all of [data, data + size) (at `offset` unless it is -1),
// retrying short writes and waiting as described above. Pool thread.
void write_fully(int fd, const char* data, std::size_t size, off_t offset, const blocking_stop& stop, const char* call,
                 const std::string& path) {
  while (size > 0) {
    const ssize_t n = retry_eintr([&] { return offset < 0 ? ::write(fd, data, size) : ::pwrite(fd, data, size, offset); });
    if (n < 0 && errno == EAGAIN) {
      if (!wait_ready(fd, POLLOUT, stop)) throw_errno(ECANCELED, call, path);  // nobody takes this any more
      continue;
    }
    if (n < 0) throw_io_errno(errno, fd, /*writing=*/true, call, path);
    data += n;
    size -= static_cast<std::size_t>(n);
    if (offset >= 0) offset += n;
  }
}

off_t checked_offset(std::uint64_t offset, const char* call) {
  if (offset > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
    throw error(errc::invalid_argument, call, "offset " + std::to_string(offset) + " is beyond the largest file offset");
  return static_cast<off_t>(offset);
}

}  // namespace

std::string read_file(const std::string& path, deadline d) {
  constexpr const char* call = "weft::fs::read_file";
  return off_pool(
      [path](const blocking_stop& stop) -> std::string {
        const int fd = open_stoppable(path, O_RDONLY | O_CLOEXEC, 0, stop);
        if (fd < 0) throw_errno(errno, call, path);
        file::descriptor owner(fd);
        struct stat st {};
        std::string out;
        if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<std::size_t>(st.st_size));
        // Read to the end, whatever fstat said: /proc files report size 0 and a file
        // may grow while we read; but not past the moment the caller stopped
        // waiting (a deadline, a cancellation): an endless file (/dev/zero, a FIFO
        // that never ends) would otherwise keep a pool thread and fill memory.
        char chunk[64 * 1024];
        for (;;) {
          if (stop.requested()) return {};  // nobody takes the result any more
          const ssize_t n = read_stoppable(fd, chunk, sizeof chunk, -1, stop);
          if (n < 0) throw_io_errno(errno, fd, /*writing=*/false, call, path);
          if (n == 0) return out;
          out.append(chunk, static_cast<std::size_t>(n));
        }
      },
      d, call, path);
}

void write_file(const std::string& path, std::string_view data, deadline d, mode_t permissions) {
  constexpr const char* call = "weft::fs::write_file";
  off_pool(
      [path, bytes = std::string(data), permissions](const blocking_stop& stop) {
        const int fd = open_stoppable(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, permissions, stop);
        if (fd < 0) throw_errno(errno, call, path);
        file::descriptor owner(fd);
        write_fully(fd, bytes.data(), bytes.size(), -1, stop, call, path);
      },
      d, call, path);
}

file file::open(const std::string& path, open_mode mode, deadline d, mode_t permissions) {
  constexpr const char* call = "weft::fs::file::open";
  const int flags = open_flags(mode) | O_CLOEXEC;
  // The descriptor is owned from the moment it exists: if this fiber stops waiting,
  // the dropped result closes it.
  auto fd = off_pool(
      [path, flags, permissions](const blocking_stop& stop) {
        const int opened = open_stoppable(path, flags, permissions, stop);
        if (opened < 0) throw_errno(errno, call, path);
        return std::make_shared<descriptor>(opened);
      },
      d, call, path);
  return file(std::move(fd), path);
}

int file::native_handle() const noexcept { return fd_ ? fd_->fd : -1; }

const std::shared_ptr<file::descriptor>& file::checked(const char* call) const {
  if (!fd_) throw error(errc::invalid_argument, call, "the file is not open");
  return fd_;
}

// read_at is read (offset -1: at the file position) and pread: the bytes land in a
// buffer the call owns and are copied out only to a caller still waiting.
std::size_t file::read_at(mutable_buffer buf, off_t offset, deadline d, const char* call) {
  auto bytes = off_pool(
      [fd = checked(call), size = buf.size, offset, call, path = path_](const blocking_stop& stop) {
        std::vector<char> into(size);
        const ssize_t n = read_stoppable(fd->fd, into.data(), size, offset, stop);
        if (n < 0) throw_io_errno(errno, fd->fd, /*writing=*/false, call, path);
        into.resize(static_cast<std::size_t>(n));
        return into;
      },
      d, call, path_);
  if (!bytes.empty()) std::memcpy(buf.data, bytes.data(), bytes.size());
  return bytes.size();
}

std::size_t file::read(mutable_buffer buf, deadline d) { return read_at(buf, -1, d, "weft::fs::file::read"); }

std::size_t file::pread(mutable_buffer buf, std::uint64_t offset, deadline d) {
  constexpr const char* call = "weft::fs::file::pread";
  return read_at(buf, checked_offset(offset, call), d, call);
}

std::size_t file::write(const_buffer data, deadline d) {
  constexpr const char* call = "weft::fs::file::write";
  off_pool(
      [fd = checked(call), bytes = std::string(static_cast<const char*>(data.data), data.size),
       path = path_](const blocking_stop& stop) { write_fully(fd->fd, bytes.data(), bytes.size(), -1, stop, call, path); },
      d, call, path_);
  return data.size;
}

std::size_t file::pwrite(const_buffer data, std::uint64_t offset, deadline d) {
  constexpr const char* call = "weft::fs::file::pwrite";
  const off_t at = checked_offset(offset, call);
  off_pool(
      [fd = checked(call), bytes = std::string(static_cast<const char*>(data.data), data.size), at,
       path = path_](const blocking_stop& stop) { write_fully(fd->fd, bytes.data(), bytes.size(), at, stop, call, path); },
      d, call, path_);
  return data.size;
}

void file::sync(deadline d) {
  constexpr const char* call = "weft::fs::file::sync";
  off_pool(
      [fd = checked(call), path = path_] {
        if (retry_eintr([&] { return ::fsync(fd->fd); }) < 0) throw_errno(errno, call, path);
      },
      d, call, path_);
}

std::uint64_t file::size(deadline d) {
  constexpr const char* call = "weft::fs::file::size";
  return off_pool(
      [fd = checked(call), path = path_] {
        struct stat st {};
        if (::fstat(fd->fd, &st) < 0) throw_errno(errno, call, path);
        return static_cast<std::uint64_t>(st.st_size);
      },
      d, call, path_);
}

}  // namespace weft::fs
