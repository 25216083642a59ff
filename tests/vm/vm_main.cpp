// SPDX-License-Identifier: MIT
// main() of the GoogleTest binaries that run inside the test VM.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (std::getenv("LIBIO_VM") == nullptr) {
        std::fprintf(stderr, "%s runs inside the test VM, for example:\n"
                             "  python3 tests/vm/vm.py run --kernel 6.1 --serial --usb-serial -- %s\n",
                     argv[0], argv[0]);
        return 2;
    }
    return RUN_ALL_TESTS();
}
