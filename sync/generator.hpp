// generator.hpp: a producer fiber iterated with range-for (Python's generator, Go's
// "goroutine feeding a channel" idiom, without its leak).
//
//   weft::generator<int> numbers([](weft::generator<int>::sink& out) {
//     for (int i = 0;; ++i) out.yield(i);           // runs in its own fiber
//   });
//   for (int v : numbers) {
//     if (v == 3) break;                             // the producer is cancelled
//   }
//
// The producer is a callable taking a `sink&`; it starts in a new fiber of the
// calling fiber's scheduler when iteration begins (begin(); nothing runs before,
// like a Python generator). Each out.yield(v) hands v to the consumer and waits
// until the consumer asks for the next one (an unbuffered channel between them):
// the producer is at most one value ahead. Only the producer's fiber waits in
// yield, only the consumer's fiber waits in the loop.
//
// Ends:
//   - the producer returns: the loop ends.
//   - the producer throws: the values it yielded before are delivered, then the
//     consumer's next step (++, or begin) rethrows the exception.
//   - the consumer stops early (break, return, an exception, a cancellation, a
//     deadline scope expiring around the loop): when the generator is destroyed,
//     the producer is cancelled (its yield, or whatever blocking call it is in,
//     throws cancelled_error) and the destructor waits for it to unwind, shielded,
//     so the producer's cleanup has run when the destructor returns. This is silent,
//     like a dropped Python generator; only an exception the producer throws other
//     than cancelled_error while being stopped goes to the unhandled exception
//     handler (it has no one else to go to).
//   - the consumer is cancelled, or its deadline scope expires, while waiting for
//     the next value: the loop throws cancelled_error / timeout_error, and the
//     producer is stopped when the generator is destroyed (above).
//
// A generator moves (its state lives on the heap; the producer holds it too) but
// does not copy. Iterate it from fibers of the scheduler that began it. Destroyed
// outside a fiber, it cancels the producer and does not wait (the producer finishes
// on its own, keeping the state alive).
#pragma once

#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scope_state.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/unhandled_exception.hpp>
#include <weft/sync/channel.hpp>

namespace weft {

template <class T>
class generator {
 public:
  using value_type = T;
  class sink;

 private:
  // The producer callable, type-erased without requiring it to be copyable.
  struct body {
    virtual ~body() = default;
    virtual void run(sink& out) = 0;
  };
  template <class F>
  struct body_of final : body {
    explicit body_of(F&& f) : fn(std::move(f)) {}
    explicit body_of(const F& f) : fn(f) {}
    F fn;
    void run(sink& out) override { std::invoke(fn, out); }
  };

  struct state {
    channel<T> values;               // unbuffered: the producer is one value ahead at most
    std::exception_ptr error;        // what the producer threw; set before values closes
    bool error_taken = false;        // rethrown to the consumer already
    std::unique_ptr<body> producer;
    spawn_options options;
    fiber<void> producer_fiber;
    bool started = false;
    fiber_id id = 0;                 // the producer's, for a report
    std::string name;
  };

 public:

  // sink is the producer's end: yield(v) hands v to the consumer, waiting until it
  // is asked for. Throws cancelled_error when the consumer has stopped (the
  // generator is being destroyed) or the producer's fiber is cancelled otherwise.
  class sink {
   public:
    void yield(T v) { state_->values.send(std::move(v)); }

   private:
    friend class generator;
    explicit sink(state* s) noexcept : state_(s) {}
    state* state_;
  };

  // generator(producer) / generator(options, producer): the producer is called as
  // producer(sink&) in its own fiber (spawn_options: its name and stack size) once
  // iteration begins. The callable is copied or moved in, like weft::spawn's.
  template <class F>
    requires std::invocable<std::decay_t<F>&, sink&> && (!std::is_same_v<std::decay_t<F>, generator>)
  explicit generator(F&& producer) : generator(spawn_options{}, std::forward<F>(producer)) {}
  template <class F>
    requires std::invocable<std::decay_t<F>&, sink&>
  generator(spawn_options options, F&& producer) : state_(std::make_shared<state>()) {
    state_->producer = std::make_unique<body_of<std::decay_t<F>>>(std::forward<F>(producer));
    state_->options = std::move(options);
  }
  generator(generator&&) noexcept = default;
  generator& operator=(generator&& other) noexcept {
    if (this != &other) {
      stop();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  generator(const generator&) = delete;
  generator& operator=(const generator&) = delete;
  // ~generator stops a producer still running, as described above.
  ~generator() { stop(); }

  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    T& operator*() const noexcept { return *current_; }
    T* operator->() const noexcept { return &*current_; }
    // ++ waits for the next value; at the end it rethrows the producer's exception,
    // if it threw. Throws cancelled_error / timeout_error as the loop's wait does,
    // named "weft::generator (waiting for the next value)".
    iterator& operator++() {
      current_.reset();
      try {
        current_ = state_->values.recv();
      } catch (const error&) {
        detail::rethrow_naming("weft::generator (waiting for the next value)");
      }
      if (!current_ && state_->error && !state_->error_taken) {
        state_->error_taken = true;
        std::rethrow_exception(state_->error);
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return !current_.has_value(); }

   private:
    friend class generator;
    explicit iterator(state* s) : state_(s) { ++*this; }
    state* state_ = nullptr;
    mutable std::optional<T> current_;
  };

  // begin starts the producer (the first time) and waits for its first value.
  // Throws errc::not_in_fiber outside a fiber, errc::invalid_argument on a
  // moved-from generator.
  iterator begin() {
    if (!state_) throw error(errc::invalid_argument, "weft::generator::begin", "a moved-from generator");
    if (!state_->started) start();
    return iterator(state_.get());
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  void start() {
    detail::scheduler::require_fiber("weft::generator::begin");
    state_->started = true;
    state_->producer_fiber = weft::spawn(std::move(state_->options), [s = state_] {
      sink out(s.get());
      try {
        s->producer->run(out);
      } catch (const boost::context::detail::forced_unwind&) {
        throw;
      } catch (...) {
        s->error = std::current_exception();
      }
      s->values.close();  // the consumer's loop ends (after the exception, if any)
    });
    state_->id = state_->producer_fiber.id();
    state_->name = state_->producer_fiber.name();
  }

  void stop() noexcept {
    if (!state_ || !state_->producer_fiber.joinable()) return;
    fiber<void>& producer = state_->producer_fiber;
    if (!producer.done()) {
      producer.cancel();
      detail::scheduler* here = detail::this_fiber_scheduler;
      if (here == nullptr) {
        producer.detach();  // it finishes on its own; it holds the state
        return;
      }
      detail::shield_guard shield(here->running());  // a cancelled consumer still waits
      producer.wait();
    }
    producer.join();  // never throws: the producer's body catches everything
    if (state_->error && !state_->error_taken) {
      // Thrown while being stopped: if not the cancellation itself, report it.
      detail::report_unhandled(state_->id, state_->name, state_->error);
    }
  }

  std::shared_ptr<state> state_;
};

}  // namespace weft
