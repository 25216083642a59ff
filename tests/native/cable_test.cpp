// SPDX-License-Identifier: MIT
// The cable agent (tests/vm/cable.py) against the guest-side client, on the
// host: sockets stand in for QEMU's chardevs, the test plays the guest's tty.
#include "cable.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

int listen_at(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0)
        throw std::system_error(errno, std::system_category(), "listen at " + path);
    return fd;
}

int accept_within(int lfd, int ms) {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, ms) != 1)
        throw std::runtime_error("the agent did not connect");
    return ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
}

std::vector<std::uint8_t> read_n(int fd, std::size_t n, int ms) {
    std::vector<std::uint8_t> got;
    std::array<std::uint8_t, 4096> buf{};
    while (got.size() < n) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) != 1)
            break;
        const auto r = ::read(fd, buf.data(), std::min(buf.size(), n - got.size()));
        if (r <= 0)
            break;
        got.insert(got.end(), buf.begin(), buf.begin() + r);
    }
    return got;
}

void write_all(int fd, const std::vector<std::uint8_t>& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const auto r = ::write(fd, data.data() + done, data.size() - done);
        ASSERT_GT(r, 0);
        done += static_cast<std::size_t>(r);
    }
}

class cable_agent : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/libio-cable.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        const int lctl = listen_at(dir_ + "/ctl");
        const int lport = listen_at(dir_ + "/p0");
        pid_ = ::fork();
        ASSERT_GE(pid_, 0);
        if (pid_ == 0) {
            const std::string script = "import sys; sys.path.insert(0, '" LIBIO_VM_DIR "'); import cable; "
                                       "cable.Agent('" + dir_ + "/ctl', {'p0': '" + dir_ + "/p0'}, None).serve()";
            ::execlp("python3", "python3", "-c", script.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        port_ = accept_within(lport, 10000);
        cable_.emplace(accept_within(lctl, 10000));
        ::close(lctl);
        ::close(lport);
    }
    void TearDown() override {
        cable_.reset();
        if (port_ >= 0)
            ::close(port_);
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
        std::system(("rm -rf " + dir_).c_str());
    }

    std::string dir_;
    pid_t pid_ = -1;
    int port_ = -1;
    std::optional<io::test::cable> cable_;
};

TEST_F(cable_agent, hello_lists_ports) {
    EXPECT_EQ(cable_->order("hello"), "ok p0");
}

TEST_F(cable_agent, send_writes_the_pattern_into_the_port) {
    cable_->post("send p0 100000 7");
    const auto got = read_n(port_, 100000, 5000);
    EXPECT_EQ(cable_->answer(), "ok 100000");
    EXPECT_EQ(got, io::test::pattern(7, 100000)) << "the Python and C++ patterns disagree";
}

TEST_F(cable_agent, expect_accepts_the_pattern) {
    cable_->post("expect p0 50000 9 5000");
    write_all(port_, io::test::pattern(9, 50000));
    EXPECT_EQ(cable_->answer(), "ok 50000");
}

TEST_F(cable_agent, send_and_expect_apply_a_mask_for_narrow_characters) {
    auto want = io::test::pattern(5, 20000);
    for (auto& b : want)
        b &= 0x7f;
    cable_->post("send p0 20000 5 0x7f");
    EXPECT_EQ(read_n(port_, want.size(), 5000), want);
    EXPECT_EQ(cable_->answer(), "ok 20000");
    cable_->post("expect p0 20000 5 5000 0x7f");
    write_all(port_, want);
    EXPECT_EQ(cable_->answer(), "ok 20000");
    cable_->post("expect p0 100 5 5000 0x7f");
    write_all(port_, io::test::pattern(5, 100));
    EXPECT_EQ(cable_->answer().rfind("err byte ", 0), 0U) << "unmasked bytes do not match a masked pattern";
}

TEST_F(cable_agent, expect_names_the_first_wrong_byte) {
    auto data = io::test::pattern(9, 1000);
    data[321] ^= 0x10;
    cable_->post("expect p0 1000 9 5000");
    write_all(port_, data);
    const auto a = cable_->answer();
    EXPECT_EQ(a.rfind("err byte 321 is ", 0), 0U) << a;
}

TEST_F(cable_agent, expect_times_out_on_missing_bytes) {
    cable_->post("expect p0 1000 9 300");
    auto data = io::test::pattern(9, 600);
    write_all(port_, data);
    EXPECT_EQ(cable_->answer(), "err got 600 of 1000 bytes within 300 ms");
}

TEST_F(cable_agent, echo_and_drain) {
    EXPECT_EQ(cable_->order("echo p0 on"), "ok");
    const auto data = io::test::pattern(3, 3000);
    write_all(port_, data);
    EXPECT_EQ(read_n(port_, data.size(), 5000), data);
    EXPECT_EQ(cable_->order("echo p0 off"), "ok");
    write_all(port_, io::test::pattern(4, 10));
    // The reader thread needs a moment to take the bytes; drain counts them.
    std::string a;
    for (int i = 0; i < 50 && (a = cable_->order("drain p0")) == "ok 0"; ++i)
        ::usleep(20000);
    EXPECT_EQ(a, "ok 10");
    EXPECT_EQ(cable_->order("drain p0"), "ok 0");
}

TEST_F(cable_agent, say_and_hear_lines) {
    EXPECT_EQ(cable_->order("say p0 hello from the host"), "ok");
    const auto got = read_n(port_, 21, 5000);
    EXPECT_EQ(std::string(got.begin(), got.end()), "hello from the host\r\n");
    const std::string line = "guest here\r\n";
    write_all(port_, {line.begin(), line.end()});
    EXPECT_EQ(cable_->order("hear p0 5000"), "ok guest here");
    EXPECT_EQ(cable_->order("hear p0 100"), "err nothing heard on p0 within 100 ms");
}

TEST_F(cable_agent, bad_orders_are_answered_not_fatal) {
    EXPECT_EQ(cable_->order("send p9 10 1"), "err no port ['p9']; ports: p0");
    EXPECT_EQ(cable_->order("frobnicate p0"), "err unknown order 'frobnicate'");
    EXPECT_EQ(cable_->order("send p0 x 1").rfind("err ValueError", 0), 0U);
    EXPECT_EQ(cable_->order("hello"), "ok p0");
}

}  // namespace
