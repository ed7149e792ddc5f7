// weft::fs: whole-file reads and writes, a file's reads, writes, pread/pwrite,
// sync and size, short reads and EOF, errors that name the call and the path, and
// deadlines and cancellation that leave the pool's late call harmless.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include "../weft_test.hpp"

using namespace weft_test;
namespace fs = weft::fs;

namespace {

// A directory of its own per test, removed afterwards.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "weft-fs-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string operator/(const char* name) const { return (path / name).string(); }
};

// "f<i>", built without operator+(const char*, string&&), which GCC 12 warns
// about (-Wrestrict) when inlined.
std::string numbered(int i) {
  std::string name = "f";
  name += std::to_string(i);
  return name;
}

void expect_errno(auto&& call, int err, const std::string& says) {
  try {
    call();
    ADD_FAILURE() << "no error; expected " << says;
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::error_code(err, std::generic_category())) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Fs, WriteFileThenReadFileRoundTripsAnySize) {
  temp_dir dir;
  run_checked([&] {
    for (std::size_t size : {std::size_t(0), std::size_t(1), std::size_t(64 * 1024), std::size_t(1'000'003)}) {
      std::string data(size, '\0');
      for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 7 + 3);
      fs::write_file(dir / "data", data);
      EXPECT_EQ(fs::read_file(dir / "data"), data) << size;
    }
    fs::write_file(dir / "data", "shorter");  // truncates
    EXPECT_EQ(fs::read_file(dir / "data"), "shorter");
  });
}

TEST(Fs, ReadFileReadsFilesThatReportNoSize) {
  run_checked([] { EXPECT_NE(fs::read_file("/proc/self/status").find("Name:"), std::string::npos); });
}

TEST(Fs, FileReadsShortAtTheEndThenZero) {
  temp_dir dir;
  run_checked([&] {
    fs::write_file(dir / "f", "0123456789");
    auto f = fs::file::open(dir / "f", fs::open_mode::read);
    std::array<char, 4> buf{};
    std::string got;
    std::size_t n, reads = 0;
    while ((n = f.read(buf)) != 0) {
      got.append(buf.data(), n);
      ++reads;
    }
    EXPECT_EQ(got, "0123456789");
    EXPECT_EQ(reads, 3u);  // 4 + 4 + 2: the last one short
    EXPECT_EQ(f.read(buf), 0u);  // and EOF stays EOF
  });
}

TEST(Fs, WriteAppendPreadPwriteSyncAndSize) {
  temp_dir dir;
  run_checked([&] {
    {
      auto f = fs::file::open(dir / "f", fs::open_mode::write);
      EXPECT_EQ(f.write("hello "), 6u);
      EXPECT_EQ(f.write(std::string("world")), 5u);
      f.sync();
      EXPECT_EQ(f.size(), 11u);
    }
    {
      auto f = fs::file::open(dir / "f", fs::open_mode::append);
      f.write("!");
    }
    auto f = fs::file::open(dir / "f", fs::open_mode::read_write);
    EXPECT_EQ(f.pwrite("W", 6), 1u);
    std::array<char, 5> buf{};
    EXPECT_EQ(f.pread(buf, 6), 5u);
    EXPECT_EQ(std::string(buf.data(), 5), "World");
    EXPECT_EQ(f.pread(buf, 100), 0u);  // past the end
    // pread/pwrite did not move the position: a read starts at 0.
    EXPECT_EQ(f.read(buf), 5u);
    EXPECT_EQ(std::string(buf.data(), 5), "hello");
    EXPECT_EQ(fs::read_file(dir / "f"), "hello World!");
  });
}

TEST(Fs, ErrorsNameTheCallAndThePath) {
  temp_dir dir;
  run_checked([&] {
    const std::string missing = dir / "missing";
    expect_errno([&] { fs::read_file(missing); }, ENOENT, "weft::fs::read_file " + missing);
    expect_errno([&] { fs::file::open(missing, fs::open_mode::read); }, ENOENT, "weft::fs::file::open " + missing);
    expect_errno([&] { fs::write_file(dir / "no/such/dir", "x"); }, ENOENT, "weft::fs::write_file");
    expect_errno([&] { fs::read_file(dir.path.string()); }, EISDIR, "weft::fs::read_file");
    fs::write_file(dir / "ro", "x");
    auto f = fs::file::open(dir / "ro", fs::open_mode::read);
    expect_errno([&] { f.write("y"); }, EBADF, "weft::fs::file::write " + (dir / "ro") + " (opened with open_mode::read)");
    auto w = fs::file::open(dir / "wo", fs::open_mode::write);
    std::array<char, 4> buf{};
    expect_errno([&] { w.read(buf); }, EBADF, "(opened for writing only");
    expect_errno([&] { fs::read_file(""); }, ENOENT, "weft::fs::read_file (empty path)");
    try {
      fs::read_file("/dev/zero", -1ms);
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("weft::fs::read_file /dev/zero", 0), 0u) << e.what();
    }
    f.close();
    EXPECT_FALSE(f.is_open());
    try {
      f.size();
      ADD_FAILURE() << "a closed file was used";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    }
  });
}

TEST(Fs, OutsideAFiberIsRefused) {
  try {
    fs::read_file("/dev/null");
    ADD_FAILURE() << "accepted outside a fiber";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
    EXPECT_NE(std::string(e.what()).find("weft::fs::read_file"), std::string::npos) << e.what();
  }
}

// Opening a FIFO blocks (on the pool) until a writer comes: the deadline ends the
// wait at once, other fibers ran meanwhile, and once a writer does come the late
// open's descriptor is closed, not leaked (the fixture counts fds).
TEST(Fs, DeadlineAndCancellationEndTheWaitAndTheLateCallIsHarmless) {
  temp_dir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  run_checked([&] {
    int ticks = 0;
    auto ticker = weft::spawn([&] {
      for (;;) {
        weft::this_fiber::sleep_for(1ms);
        ++ticks;
      }
    });
    EXPECT_THROW(fs::file::open(fifo, fs::open_mode::read, 20ms), weft::timeout_error);
    EXPECT_GT(ticks, 0);  // the scheduler was not blocked
    EXPECT_THROW(weft::with_timeout(5ms, [&] { return fs::file::open(fifo, fs::open_mode::read); }),
                 weft::timeout_error);
    auto opener = weft::spawn([&] { fs::file::open(fifo, fs::open_mode::read); });
    weft::this_fiber::sleep_for(2ms);
    opener.cancel();
    EXPECT_THROW(opener.join(), weft::cancelled_error);
    // Release the three opens still blocked on their pool threads: a writer that
    // comes and goes lets each open return, and each dropped result closes its fd.
    for (int released = 0; released < 200; ++released) {
      const int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (w >= 0) ::close(w);
      weft::this_fiber::sleep_for(1ms);
    }
    ticker.cancel();
    EXPECT_THROW(ticker.join(), weft::cancelled_error);
  });
}

// Fibers on two schedulers use files at once; every byte lands.
TEST(Fs, FilesFromFibersOfSeveralSchedulers) {
  temp_dir dir;
  weft::run_options two;
  two.threads = 2;
  run_checked(
      [&] {
        std::vector<weft::fiber<void>> writers;
        for (int i = 0; i < 8; ++i)
          writers.push_back(weft::spawn({.on = weft::on_any}, [&dir, i] {
            fs::write_file(dir / numbered(i).c_str(), std::string(1000 + i, char('a' + i)));
          }));
        for (auto& w : writers) w.join();
        for (int i = 0; i < 8; ++i)
          EXPECT_EQ(fs::read_file(dir / numbered(i).c_str()), std::string(1000 + i, char('a' + i)));
      },
      two);
}

// A FIFO nobody opens at the other end, or whose writer stays silent, makes every
// call on it wait: each gives up at its deadline, and so does its pool thread
// (within 50 ms). They used to keep their pool threads blocked in open() or read()
// for good: after as many as the pool has threads, every later fs call and
// to_thread of the process only queued. With one pool thread, each next call shows
// the thread came back.
TEST(Fs, CallsThatWaitOnAFifoFreeTheirPoolThreadWhenTheCallerStops) {
  hang_guard guard;
  temp_dir dir;
  const std::string fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::size_t limit = weft::to_thread_limit();
  weft::set_to_thread_limit(1);
  run_checked([&] {
    const auto pool_is_free = [] { return weft::with_timeout(2s, [] { return weft::to_thread([] { return 7; }); }) == 7; };
    EXPECT_THROW(fs::read_file(fifo, 20ms), weft::timeout_error);  // no writer: open waits
    EXPECT_TRUE(pool_is_free());
    EXPECT_THROW(fs::write_file(fifo, "x", 20ms), weft::timeout_error);  // no reader
    EXPECT_TRUE(pool_is_free());
    EXPECT_THROW(fs::file::open(fifo, fs::open_mode::append, 20ms), weft::timeout_error);
    EXPECT_TRUE(pool_is_free());
    auto opener = weft::spawn([&] { fs::file::open(fifo, fs::open_mode::read); });
    weft::this_fiber::sleep_for(5ms);
    opener.cancel();
    EXPECT_THROW(opener.join(), weft::cancelled_error);
    EXPECT_TRUE(pool_is_free());
    // A writer that stays silent: the open returns once it has written, the next
    // read waits and times out, and the one after gets the next bytes.
    const int w = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // O_RDWR: no wait for a reader
    ASSERT_GE(w, 0);
    ASSERT_EQ(::write(w, "ab", 2), 2);
    auto f = fs::file::open(fifo, fs::open_mode::read, 2s);
    std::array<char, 8> buf{};
    EXPECT_EQ(f.read(buf, 2s), 2u);
    EXPECT_THROW(f.read(buf, 20ms), weft::timeout_error);
    EXPECT_TRUE(pool_is_free());
    ASSERT_EQ(::write(w, "cd", 2), 2);
    ASSERT_EQ(f.read(buf, 2s), 2u);
    EXPECT_EQ(std::string(buf.data(), 2), "cd");
    ::close(w);
    EXPECT_EQ(f.read(buf, 2s), 0u);  // every writer gone: the end
    // And a reader that comes: write_file waits for it, then writes (two pool
    // threads: the reader's open waits on one meanwhile).
    weft::set_to_thread_limit(2);
    auto reader = weft::spawn([&] { return fs::read_file(fifo, 2s); });
    fs::write_file(fifo, "hello", 2s);
    EXPECT_EQ(reader.join(), "hello");
  });
  weft::set_to_thread_limit(limit);
}

// A regular file under another process's read lease (as Samba and NFS servers hold
// them): opening it for writing waits until the lease is given up, as open(2)
// does. An O_NONBLOCK open, which the FIFO handling first used for every file,
// fails at once with EAGAIN instead (breaker's finding).
TEST(Fs, OpeningALeasedFileWaitsForTheLeaseToBreak) {
  hang_guard guard;
  temp_dir dir;
  const std::string path = dir / "leased";
  {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  const pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {  // async-signal-safe calls only, then _exit
    ::signal(SIGIO, SIG_IGN);  // the lease-break notice
    const int fd = ::open(path.c_str(), O_RDONLY);
    const bool leased = fd >= 0 && ::fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
    (void)!::write(ready[1], leased ? "y" : "n", 1);
    if (!leased) ::_exit(1);
    ::usleep(200'000);
    ::fcntl(fd, F_SETLEASE, F_UNLCK);
    ::_exit(0);
  }
  char leased = 0;
  ASSERT_EQ(::read(ready[0], &leased, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  if (leased == 'y') {
    run_checked([&] { EXPECT_NO_THROW(fs::write_file(path, "new", 10s)); });
    EXPECT_EQ(weft::run([&] { return fs::read_file(path); }), "new");
  }
  int status = 0;
  ASSERT_EQ(::waitpid(holder, &status, 0), holder);
  if (leased != 'y') GTEST_SKIP() << "this file system refused a lease";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

namespace {

// read_file of an endless file gives up at its deadline (naming itself), and so
// does the pool thread behind it: the loop stops once nobody waits for it (it
// used to read on, filling memory, and keep the thread for good). With one pool
// thread, the next call shows that thread is free again.
TEST(Fs, AnEndlessReadStopsOnThePoolAtTheDeadline) {
  hang_guard guard;
  const std::size_t limit = weft::to_thread_limit();
  weft::set_to_thread_limit(1);
  run_checked([] {
    try {
      fs::read_file("/dev/zero", 30ms);
      ADD_FAILURE() << "read /dev/zero to its end";
    } catch (const weft::timeout_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("weft::fs::read_file", 0), 0u) << e.what();
    }
    EXPECT_EQ(weft::to_thread([] { return 7; }), 7);  // the one pool thread came back
    // A deadline already past: nothing runs, and the error names the call.
    try {
      fs::read_file("/dev/zero", -1ms);
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("weft::fs::read_file", 0), 0u) << e.what();
    }
  });
  weft::set_to_thread_limit(limit);
}

}  // namespace
