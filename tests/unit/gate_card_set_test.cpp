// SPDX-License-Identifier: MIT
// io::gate::card_set: which present cards the configuration publishes, and
// DBIRTH/DDEATH as cards come, go and fail. Devices come from a factory
// here (card_device needs gpiochips: the test VM's virtual cards).
#include <io/gate/card_set.hpp>

#include <gtest/gtest.h>

#include <algorithm>

using namespace std::chrono_literals;
namespace gate = io::gate;

namespace {

struct recorder final : gate::transport {
    std::vector<std::string> topics;
    void connect(const gate::will_message&) override {}
    bool publish(const std::string& t, const std::string&, int, bool) override {
        topics.push_back(t);
        return true;
    }
    void subscribe(const std::string&, int) override {}
    void disconnect(bool) override {}
};

struct memory_store final : gate::bdseq_store {
    std::uint8_t next() override { return 0; }
};

struct one_line final : gate::device {
    std::vector<gate::metric> birth_metrics() override {
        return {gate::make_metric("Lines/A0", gate::datatype::boolean, false)};
    }
    write_status write(const gate::metric&, std::vector<gate::metric>&) override { return write_status::not_writable; }
};

io::card_info card(const std::string& name, const std::string& model, const std::string& label, unsigned index) {
    io::card_info c;
    c.name = name;
    c.model = model;
    c.label = label;
    c.location = "sim:" + std::to_string(index);
    c.index = index;
    c.syspath = "/sys/class/iocard/" + name;
    c.gpiochip = "/dev/gpiochip" + std::to_string(index);
    return c;
}

gate::card_entry entry(const std::string& key, const std::string& id = {}) {
    gate::card_entry e;
    e.card = key;
    e.device_id = id;
    return e;
}

class gate_card_set : public ::testing::Test {
protected:
    gate_card_set() {
        gate::node_config c;
        c.group_id = "plant1";
        c.edge_node_id = "node7";
        n_ = std::make_unique<gate::node>(c, t_, store_);
        n_->start();
        n_->on_connected();
        t_.topics.clear();
    }
    gate::card_set::factory factory() {
        return [this](const io::card_info& c, const gate::card_entry&, std::function<void(std::vector<gate::metric>)>,
                      std::function<void(std::error_code)> on_gone) -> std::unique_ptr<gate::device> {
            if (c.name == "broken")
                throw std::runtime_error("cannot open it");
            gone_[c.name] = std::move(on_gone);
            return std::make_unique<one_line>();
        };
    }
    recorder t_;
    memory_store store_;
    std::unique_ptr<gate::node> n_;
    io::event_loop loop_;
    std::map<std::string, std::function<void(std::error_code)>> gone_;
    std::vector<std::string> logged_;
};

}  // namespace

TEST_F(gate_card_set, configured_cards_come_and_go_with_dbirth_and_ddeath) {
    gate::card_set set{{entry("press-io"), entry("pci:0000:03:00.0"), entry("iocard2", "belt")}, *n_, loop_, factory()};
    auto a = card("iocard0", "dio24", "press-io", 0);
    auto b = card("iocard1", "dio24", "iocard1", 1);  // not configured
    auto c = card("iocard2", "dio48", "iocard2", 2);
    const std::vector<io::card_info> present{a, b, c};
    for (const auto& x : present)
        set.attach(x, present);
    EXPECT_EQ(t_.topics, (std::vector<std::string>{"spBv1.0/plant1/DBIRTH/node7/press-io",
                                                   "spBv1.0/plant1/DBIRTH/node7/belt"}));
    EXPECT_EQ(set.absent(present), std::vector<std::string>{"pci:0000:03:00.0"});
    set.attach(a, present);  // seen again: published once
    EXPECT_EQ(t_.topics.size(), 2U);
    set.detach(c);
    EXPECT_EQ(t_.topics.back(), "spBv1.0/plant1/DDEATH/node7/belt");
    set.attach(c, present);
    EXPECT_EQ(t_.topics.back(), "spBv1.0/plant1/DBIRTH/node7/belt");
    set.detach(b);  // never published: nothing
    EXPECT_EQ(t_.topics.size(), 4U);
}

TEST_F(gate_card_set, a_card_whose_lines_fail_dies_after_its_callback_and_returns_when_it_arrives) {
    gate::card_set set{{entry("press-io")}, *n_, loop_, factory()};
    const auto a = card("iocard0", "dio24", "press-io", 0);
    set.attach(a, {a});
    gone_.at("iocard0")(std::make_error_code(std::errc::no_such_device));
    EXPECT_EQ(t_.topics.size(), 1U);  // not from inside the device's own callback
    EXPECT_EQ(loop_.run_once(1000ms), 1U);
    EXPECT_EQ(t_.topics.back(), "spBv1.0/plant1/DDEATH/node7/press-io");
    EXPECT_TRUE(set.device_ids().empty());
    set.attach(a, {a});
    EXPECT_EQ(t_.topics.back(), "spBv1.0/plant1/DBIRTH/node7/press-io");
}

TEST_F(gate_card_set, ambiguous_keys_and_failures_are_logged_not_thrown) {
    gate::card_set set{{entry("dio24")}, *n_, loop_, factory()};
    set.log = [this](const std::string& s) { logged_.push_back(s); };
    auto a = card("iocard0", "dio24", "iocard0", 0);
    auto b = card("iocard1", "dio24", "iocard1", 1);
    set.attach(a, {a, b});
    EXPECT_TRUE(t_.topics.empty());
    ASSERT_FALSE(logged_.empty());
    EXPECT_NE(logged_.back().find("[[card]] card = 'dio24'"), std::string::npos) << logged_.back();
    set.attach(a, {a});  // the model is unique now
    EXPECT_EQ(t_.topics.size(), 1U);

    gate::card_set broken_set{{entry("broken")}, *n_, loop_, factory()};
    broken_set.log = [this](const std::string& s) { logged_.push_back(s); };
    const auto x = card("broken", "dio24", "broken", 5);
    EXPECT_NO_THROW(broken_set.attach(x, {x}));
    EXPECT_NE(logged_.back().find("cannot open it"), std::string::npos) << logged_.back();
    EXPECT_TRUE(broken_set.device_ids().empty());
}
