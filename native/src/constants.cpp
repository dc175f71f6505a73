#include "constants.h"

#include <unordered_map>

namespace strata {

unsigned int FlagMask(std::string_view type) {
  // Built once: every call that takes flags checks them, and the table has thousands of entries.
  static const std::unordered_map<std::string_view, unsigned int> masks = [] {
    std::unordered_map<std::string_view, unsigned int> m;
    for (const auto& c : IntConstants()) m[c.type] |= static_cast<unsigned int>(c.value);
    return m;
  }();
  auto it = masks.find(type);
  return it == masks.end() ? 0 : it->second;
}

std::string NameOf(const std::string& type, long long value) {
  for (const auto& c : IntConstants()) {
    if (c.value == value && type == c.type) return c.name;
  }
  return "";
}

}  // namespace strata
