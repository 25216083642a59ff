// SPDX-License-Identifier: MIT
// Runs a command-line tool as a child process for its tests: whole runs
// (status, stdout, stderr), or a running process whose stdout is read line
// by line and that can be signalled.
//   auto r = io::test::run_tool({IOTOOL, "list", "--json"});
//   EXPECT_EQ(r.status, 0);
#pragma once

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace io::test {

struct tool_result {
    int status = -1;  ///< exit status, or 128 + signal
    std::string out;
    std::string err;
};

class tool_process final {
public:
    /// Starts argv[0] with the given arguments; stdin gets `input` (then EOF).
    explicit tool_process(const std::vector<std::string>& argv, const std::string& input = {}) {
        int in[2], out[2], err[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0)
            throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::dup2(err[1], 2);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        ::close(err[1]);
        out_ = out[0];
        err_ = err[0];
        if (!input.empty())
            (void)!::write(in[1], input.data(), input.size());
        ::close(in[1]);
    }
    ~tool_process() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
        ::close(out_);
        ::close(err_);
    }
    tool_process(const tool_process&) = delete;
    tool_process& operator=(const tool_process&) = delete;

    pid_t pid() const noexcept { return pid_; }

    /// True once the process sleeps in poll/ppoll/epoll (its /proc wchan):
    /// a monitor such as gpiomon has then made its line requests and waits
    /// for events. Until then a line may show as requested while its
    /// interrupt is still being set up (request_threaded_irq() waits for the
    /// new irq thread to start), and taking the chip away in that window
    /// leaves the requester waiting forever in 6.12's gpiolib.
    bool waiting_in_poll() const {
        std::string w;
        if (std::FILE* f = std::fopen(("/proc/" + std::to_string(pid_) + "/wchan").c_str(), "r")) {
            char b[128];
            const auto n = std::fread(b, 1, sizeof b, f);
            std::fclose(f);
            w.assign(b, n);
        }
        return w.find("poll") != std::string::npos;
    }

    /// The next line of stdout (without the newline), or nullopt at EOF or timeout.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
                auto line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                out_seen_ += line + "\n";
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            char b[4096];
            const auto n = ::read(out_, b, sizeof b);
            if (n <= 0)
                return std::nullopt;
            buf_.append(b, static_cast<std::size_t>(n));
        }
    }

    void signal(int sig) { ::kill(pid_, sig); }

    /// Waits for the end (killing it after timeout) and collects the rest of its output.
    tool_result wait(std::chrono::milliseconds timeout = std::chrono::seconds{60}) {
        tool_result r;
        r.out = out_seen_ + buf_;
        buf_.clear();
        const auto end = std::chrono::steady_clock::now() + timeout;
        bool out_open = true, err_open = true;
        while (out_open || err_open) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                ::kill(pid_, SIGKILL);
                r.err += "\n[killed after the timeout]";
                break;
            }
            pollfd p[2] = {{out_open ? out_ : -1, POLLIN, 0}, {err_open ? err_ : -1, POLLIN, 0}};
            if (::poll(p, 2, static_cast<int>(left.count())) <= 0)
                continue;
            char b[4096];
            for (int i = 0; i < 2; ++i) {
                if (p[i].revents == 0)
                    continue;
                const auto n = ::read(p[i].fd, b, sizeof b);
                if (n <= 0)
                    (i == 0 ? out_open : err_open) = false;
                else
                    (i == 0 ? r.out : r.err).append(b, static_cast<std::size_t>(n));
            }
        }
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
        r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return r;
    }

private:
    pid_t pid_ = -1;
    int out_ = -1;
    int err_ = -1;
    std::string buf_;
    std::string out_seen_;
};

/// Runs a tool to its end.
inline tool_result run_tool(const std::vector<std::string>& argv, const std::string& input = {},
                            std::chrono::milliseconds timeout = std::chrono::seconds{60}) {
    tool_process p{argv, input};
    return p.wait(timeout);
}

/// Whether text contains part.
/// Waits (up to 5 s) until process pid has `path` open: a tool started on a
/// tty is then listening on it.
inline void wait_open(pid_t pid, const std::string& path) {
    for (int i = 0; i < 500; ++i) {
        for (int fd = 3; fd < 16; ++fd) {
            char link[256] = {};
            const auto proc = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
            if (::readlink(proc.c_str(), link, sizeof link - 1) > 0 && path == link)
                return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
}

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace io::test
