// user_posts_comments: the asyncio tutorial's nested fan-out "a user, then all
// their posts at once, then each post's comments at once" (asyncio.gather inside
// asyncio.gather), as plain blocking calls in fibers. A small API runs in this
// process, answering in plain text after 20 ms each, like a database would:
//   GET /users/1 -> the user's post ids ("10 11 12 13")
//   GET /posts/ID -> the post's comment ids ("100 101")
//   GET /comments/ID -> the comment's text
// The client builds the user -> posts -> comments tree in three rounds of
// requests, not eleven. Checks its own answer: the tree is the API's data exactly,
// in order; exit status 0 and "4 posts, 6 comments".
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
using weft::http::request, weft::http::response;

namespace {

// The API's data, in the plain text it answers with: lists of ids, comment texts.
// Post 12 has no comments: its gather has nothing to wait for.
const std::map<std::string, std::string, std::less<>> resources{
    {"/users/1", "10 11 12 13"},
    {"/posts/10", "100 101"},
    {"/posts/11", "110"},
    {"/posts/12", ""},
    {"/posts/13", "130 131 132"},
    {"/comments/100", "Nice post."},
    {"/comments/101", "Thanks!"},
    {"/comments/110", "I disagree."},
    {"/comments/130", "Fibers or coroutines?"},
    {"/comments/131", "Fibers."},
    {"/comments/132", "Why not both?"},
};

response api(request& req) {
  weft::this_fiber::sleep_for(20ms);  // the database's latency: only this request waits
  const auto found = resources.find(req.path());
  if (found == resources.end()) return response::text(404, "no such thing");
  return response::text(200, found->second);
}

std::vector<int> split_ids(const std::string& text) {
  std::vector<int> ids;
  std::istringstream in(text);
  for (int id; in >> id;) ids.push_back(id);
  return ids;
}

struct post {
  int id;
  std::vector<std::string> comments;
  friend bool operator==(const post&, const post&) = default;
};

}  // namespace

int main() try {
  return weft::run([] {
    auto listener = weft::net::tcp_listener::bind(weft::net::endpoint::parse("127.0.0.1:0"));
    const std::string base = "http://" + listener.local_endpoint().to_string();
    weft::http::client web;
    auto get = [&](const std::string& path) {
      response r = web.get(base + path, 10s);
      if (r.status != 200) throw std::runtime_error("GET " + path + ": " + std::to_string(r.status));
      return r.body;
    };

    std::vector<post> posts;
    const auto start = weft::clock::now();
    weft::with_task_group([&](weft::task_group& group) {  // the server lives inside it
      group.spawn({.name = "api"}, [&] { weft::http::serve(listener, api); });

      std::vector<std::function<post()>> fetch_posts;
      for (int post_id : split_ids(get("/users/1")))
        fetch_posts.push_back([&, post_id] {
          std::vector<std::function<std::string()>> fetch_comments;
          for (int comment_id : split_ids(get("/posts/" + std::to_string(post_id))))
            fetch_comments.push_back([&, comment_id] { return get("/comments/" + std::to_string(comment_id)); });
          return post{post_id, weft::gather(fetch_comments)};  // this post's comments, all at once
        });
      posts = weft::gather(fetch_posts);  // every post at once, each fetching its comments

      listener.close();  // serve stops accepting, closes the idle connections, returns
    });
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(weft::clock::now() - start);

    const std::vector<post> expected{{10, {"Nice post.", "Thanks!"}},
                                     {11, {"I disagree."}},
                                     {12, {}},
                                     {13, {"Fibers or coroutines?", "Fibers.", "Why not both?"}}};
    std::size_t comments = 0;
    for (const post& p : posts) comments += p.comments.size();
    std::printf("%zu posts, %zu comments (%lld ms)\n", posts.size(), comments, static_cast<long long>(elapsed.count()));
    if (posts != expected) {
      std::fprintf(stderr, "user_posts_comments: WRONG: the tree is not the API's 4 posts and 6 comments\n");
      return 1;
    }
    return 0;
  });
} catch (const std::exception& e) {
  std::fprintf(stderr, "user_posts_comments: %s\n", e.what());
  return 1;
}
