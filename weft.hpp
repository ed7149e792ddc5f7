// weft.hpp: everything a weft program needs, in one include.
//
// weft runs stackful fibers on an epoll reactor: code calls sleep_for, join, fd
// waits (and, built on them, channels and sockets) as if it were blocking code, and
// only the calling fiber is suspended while its scheduler runs the others. Fibers
// are never preempted except at these blocking points.
#pragma once

#include <weft/runtime/background_runtime.hpp>
#include <weft/runtime/clock.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fd_wait.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/run.hpp>
#include <weft/runtime/scheduler_handle.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/runtime/signal_set.hpp>
#include <weft/runtime/stack_options.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/to_thread.hpp>
#include <weft/runtime/unhandled_exception.hpp>
#include <weft/fs/file.hpp>
#include <weft/net/address.hpp>
#include <weft/net/listener.hpp>
#include <weft/net/read_buffer.hpp>
#include <weft/net/resolve.hpp>
#include <weft/net/serve.hpp>
#include <weft/net/stream.hpp>
#include <weft/net/tls.hpp>
#include <weft/net/udp.hpp>
#include <weft/http/client.hpp>
#include <weft/http/message.hpp>
#include <weft/http/server.hpp>
#include <weft/structured/as_completed.hpp>
#include <weft/structured/gather.hpp>
#include <weft/structured/outcome.hpp>
#include <weft/structured/race.hpp>
#include <weft/structured/task_group.hpp>
#include <weft/sync/barrier.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/condition_variable.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/generator.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/once.hpp>
#include <weft/sync/queue.hpp>
#include <weft/sync/select.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/wait_group.hpp>
