// net::read_buffer: the unconsumed tail survives reads, the storage grows for a
// message bigger than it, and nothing is lost or repeated across many small reads.
#include <weft/net/read_buffer.hpp>
#include <weft/runtime/fiber.hpp>

#include <string>

#include "net_test.hpp"

namespace {

using namespace std::chrono_literals;
using namespace weft_test;
namespace net = weft::net;

TEST(ReadBuffer, KeepsTheTailAndGrowsForABigMessage) {
  run_checked([] {
    auto [a, b] = net::unix_stream::pair();
    const std::string sent = pattern(3, 5000);
    auto writer = weft::spawn([&, &a = a] {
      for (std::size_t at = 0; at < sent.size(); at += 700) a.write_all(std::string_view(sent).substr(at, 700));
      a.close();
    });
    net::read_buffer in(64);  // far smaller than the message: it must grow
    while (in.unparsed().size() < 3000) ASSERT_GT(in.read_from(b, 10s), 0u);
    EXPECT_EQ(in.unparsed(), std::string_view(sent).substr(0, in.unparsed().size()));

    std::string received(in.unparsed().substr(0, 1234));
    in.consume(1234);  // a parser took one message; the rest stays for the next
    for (;;) {
      received += std::string(in.unparsed().substr(0, 17));  // consume in odd pieces
      in.consume(std::min<std::size_t>(17, in.unparsed().size()));
      if (in.unparsed().empty() && in.read_from(b, 10s) == 0) break;
    }
    EXPECT_TRUE(received == sent) << received.size() << " bytes received of " << sent.size();
    writer.join();
  });
}

// A large message made the storage grow; once it is consumed, shrink gives the
// storage back (a long-lived connection keeps what ordinary messages need), and
// the buffer reads on as before. With bytes unparsed it keeps them.
TEST(ReadBuffer, ShrinkGivesBackWhatALargeMessageTook) {
  run_checked([] {
    auto [a, b] = net::unix_stream::pair();
    const std::string sent = pattern(7, 100'000);
    auto writer = weft::spawn([&, &a = a] {
      a.write_all(sent);
      a.write_all(std::string_view("tail"));
      a.close();
    });
    net::read_buffer in(1024);
    while (in.unparsed().size() < sent.size() + 1) ASSERT_GT(in.read_from(b, 10s), 0u);
    EXPECT_GE(in.capacity(), sent.size());
    in.shrink();  // bytes unparsed: kept
    EXPECT_EQ(in.unparsed().substr(0, sent.size()), sent);
    in.consume(sent.size());
    std::string rest(in.unparsed());
    in.consume(rest.size());
    in.shrink();
    EXPECT_EQ(in.capacity(), 0u);
    while (in.read_from(b, 10s) != 0) {
      rest += std::string(in.unparsed());
      in.consume(in.unparsed().size());
    }
    EXPECT_EQ(rest, "tail");
    EXPECT_LE(in.capacity(), 4 * 1024u);
    writer.join();
  });
}

}  // namespace
