// EnumTable: an enum's names in one table, read both ways (libvirt's VIR_ENUM_IMPL), so a state
// or kind that is stored or sent as a string is spelled in exactly one place.
//
//   constexpr EnumTable<LeaseState, 3> kNames{{{LeaseState::a, "a"}, ...}};
//   std::string_view to_string(LeaseState s) { return kNames.name(s); }
//   template <> std::optional<LeaseState> from_string(std::string_view s) { return kNames.parse(s); }
//
// Every enumerator must have an entry (tests check the round trip); a value missing from the
// table is named "" and a name missing from it parses to nullopt. Constant data, thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace sriovd {

template <class E, size_t N>
struct EnumTable {
  std::array<std::pair<E, std::string_view>, N> entries;

  constexpr std::string_view name(E e) const {
    for (const auto& [v, n] : entries)
      if (v == e) return n;
    return {};
  }
  constexpr std::optional<E> parse(std::string_view s) const {
    for (const auto& [v, n] : entries)
      if (n == s) return v;
    return std::nullopt;
  }
  constexpr size_t size() const { return N; }
};

// The enum named `s`, or nullopt. Specialised next to each enum that has a table.
template <class E>
std::optional<E> from_string(std::string_view s);

}  // namespace sriovd
