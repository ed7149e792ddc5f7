// weft.hpp: everything a weft program needs, in one include.
//
// weft runs stackful fibers on an epoll reactor: code calls sleep_for, join, fd
// waits (and, built on them, channels and sockets) as if it were blocking code, and
// only the calling fiber is suspended while its scheduler runs the others. Fibers
// are never preempted except at these blocking points.
#pragma once

#include "runtime/clock.hpp"
#include "runtime/error.hpp"
#include "runtime/fd_wait.hpp"
#include "runtime/fiber.hpp"
#include "runtime/run.hpp"
#include "runtime/scheduler_handle.hpp"
#include "runtime/scope.hpp"
#include "runtime/signal_set.hpp"
#include "runtime/stack_options.hpp"
#include "runtime/this_fiber.hpp"
#include "runtime/unhandled_exception.hpp"
#include "net/address.hpp"
#include "net/listener.hpp"
#include "net/resolve.hpp"
#include "net/stream.hpp"
#include "net/udp.hpp"
#include "sync/barrier.hpp"
#include "sync/channel.hpp"
#include "sync/condition_variable.hpp"
#include "sync/event.hpp"
#include "sync/gather.hpp"
#include "sync/generator.hpp"
#include "sync/mutex.hpp"
#include "sync/once.hpp"
#include "sync/select.hpp"
#include "sync/semaphore.hpp"
#include "sync/task_group.hpp"
#include "sync/wait_group.hpp"
