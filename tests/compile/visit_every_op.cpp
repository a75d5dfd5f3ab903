// Compiled by ctest twice (tests/CMakeLists.txt): with every case it compiles; without the
// FreeContig case (-DFORGET_ONE) it must not. impl/ (Allocator::execute) and model/
// (Model::execute) dispatch on Op exactly this way, so an operation added to trace/ops.h that
// one of them forgets stops the build with kNotHandled's message.
#include "trace/ops.h"

namespace cmacheck {

struct Dispatcher {
  template <class O>
  int execute(const O&);
  int apply(const Op& op);
};

template <class O>
int Dispatcher::execute(const O&) {
  static_assert(kNotHandled<O>, "this dispatcher does not implement this operation");
  return -1;
}
template <>
int Dispatcher::execute(const Alloc&) { return 0; }
template <>
int Dispatcher::execute(const Free&) { return 1; }
template <>
int Dispatcher::execute(const Pin&) { return 2; }
template <>
int Dispatcher::execute(const Unpin&) { return 3; }
template <>
int Dispatcher::execute(const Migrate&) { return 4; }
template <>
int Dispatcher::execute(const CmaAlloc&) { return 5; }
template <>
int Dispatcher::execute(const CmaRelease&) { return 6; }
template <>
int Dispatcher::execute(const CmaReleaseRaw&) { return 7; }
template <>
int Dispatcher::execute(const AllocContig&) { return 8; }
template <>
int Dispatcher::execute(const Touch&) { return 10; }
template <>
int Dispatcher::execute(const LruDrain&) { return 11; }
template <>
int Dispatcher::execute(const PcpDrain&) { return 12; }
#ifndef FORGET_ONE
template <>
int Dispatcher::execute(const FreeContig&) { return 9; }
#endif

int Dispatcher::apply(const Op& op) {
  return std::visit([&](const auto& o) { return execute(o); }, op);
}

}  // namespace cmacheck
