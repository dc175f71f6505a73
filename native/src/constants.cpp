#include "constants.h"

namespace strata {

unsigned int FlagMask(const std::string& type) {
  unsigned int mask = 0;
  for (const auto& c : IntConstants()) {
    if (type == c.type) mask |= static_cast<unsigned int>(c.value);
  }
  return mask;
}

std::string NameOf(const std::string& type, long long value) {
  for (const auto& c : IntConstants()) {
    if (c.value == value && type == c.type) return c.name;
  }
  return "";
}

}  // namespace strata
