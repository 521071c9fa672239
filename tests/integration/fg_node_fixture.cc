#include "fg_node_fixture.h"

namespace fg::testing {
TempDir* NodeFixture::dir_ = nullptr;
Process* NodeFixture::serve_ = nullptr;
int NodeFixture::port_ = 0;
std::string NodeFixture::data_;
std::string NodeFixture::url_;
}  // namespace fg::testing
