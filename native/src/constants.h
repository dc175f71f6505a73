// libvirt's enum and string constants, exported to JS by their C names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct IntConstant {
  const char* name;
  const char* type;  // the libvirt enum type, e.g. "virDomainBlockPullFlags"
  long long value;
};

struct StringConstant {
  const char* name;
  const char* value;
};

const std::vector<IntConstant>& IntConstants();
const std::vector<StringConstant>& StringConstants();

// The bitwise OR of every value of a flags enum: what a caller may pass.
unsigned int FlagMask(std::string_view type);

// The C name of a value of an enum type ("VIR_ERR_NO_DOMAIN"), or "" when libvirt is newer than
// the table.
std::string NameOf(const std::string& type, long long value);

}  // namespace strata
