// SPDX-License-Identifier: MIT
#include <io/gate/loop_mailbox.hpp>

#include <cerrno>
#include <cstdint>
#include <string>
#include <sys/eventfd.h>
#include <system_error>
#include <unistd.h>

namespace io::gate {

loop_mailbox::loop_mailbox(event_loop& loop, const char* what) {
    efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0)
        throw std::system_error(errno, std::generic_category(), std::string("eventfd for ") + what);
    try {
        watch_ = loop.watch(efd_, ready::in, [this](readiness) { deliver(); });
    } catch (...) {
        ::close(efd_);
        throw;
    }
}

loop_mailbox::~loop_mailbox() {
    watch_.reset();
    ::close(efd_);
}

void loop_mailbox::post(std::function<void()> f) {
    {
        const std::lock_guard lock{mutex_};
        queue_.push_back(std::move(f));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(efd_, &one, sizeof one);
}

void loop_mailbox::deliver() {
    std::uint64_t v = 0;
    [[maybe_unused]] const auto n = ::read(efd_, &v, sizeof v);
    std::deque<std::function<void()>> batch;
    {
        const std::lock_guard lock{mutex_};
        batch.swap(queue_);
    }
    for (auto& f : batch)
        if (f)
            f();
}

}  // namespace io::gate
