// The strongSwan lab (namespaces, veths, charon daemons) is shared with the
// end-to-end test in tests/integration/. Test binaries are one per folder
// (tests/CMakeLists.txt globs tests/<module>/*.cc), so this file compiles
// the same lab into segw_test instead of keeping a second copy of it.
#include "integration/strongswan_fixture.cc"  // NOLINT(bugprone-suspicious-include)
