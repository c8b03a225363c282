// Field tables: each option of a struct is declared once, as a row X(type, name, default, allowed
// values) of an X-macro list. The rows generate the struct's members (RILS_FIELD or TORCH_ARG) and
// a table of Field entries, through which the addon reads, range-checks and reports every field
// generically (napi/options.cpp) and lib/ validates options before they cross (native.schema()).
// Adding an option is one row here and the code that uses it.
#pragma once
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <c10/util/Exception.h>

namespace rils {

// kChoice: an enum, named in JS by the strings of its Range::choices, in enumerator order.
enum class FieldType { kInt, kReal, kBool, kChoice };

template <class T>
constexpr FieldType field_type() {
  if constexpr (std::is_same_v<T, bool>)
    return FieldType::kBool;
  else if constexpr (std::is_enum_v<T>)
    return FieldType::kChoice;
  else if constexpr (std::is_integral_v<T>)
    return FieldType::kInt;
  else
    return FieldType::kReal;
}

// Every field's value as a double, and back (an enum by its enumerator's index).
template <class T>
constexpr double to_double(T v) {
  if constexpr (std::is_enum_v<T>)
    return static_cast<double>(static_cast<int>(v));
  else
    return static_cast<double>(v);
}
template <class T>
constexpr T from_double(double v) {
  if constexpr (std::is_enum_v<T>)
    return static_cast<T>(static_cast<int>(v));
  else
    return static_cast<T>(v);
}

// The allowed values of a field: an interval, each end closed or open (booleans: any()); for a
// choice, the indices of `choices` ("a|b|c").
struct Range {
  double min = -std::numeric_limits<double>::infinity(), max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
  const char* choices = nullptr;

  bool contains(double v) const { return (min_open ? v > min : v >= min) && (max_open ? v < max : v <= max); }
  // The names of a choice field, in index order.
  std::vector<std::string> names() const {
    std::vector<std::string> out(1);
    for (const char* c = choices; c && *c; ++c) {
      if (*c == '|')
        out.emplace_back();
      else
        out.back().push_back(*c);
    }
    return out;
  }
  std::string describe() const {  // ">= 0", "> 0", "in [0, 1)", "one of rils, clip"
    std::ostringstream s;
    if (choices) {
      const auto all = names();
      s << "one of";
      for (size_t i = 0; i < all.size(); ++i) s << (i ? ", " : " ") << all[i];
      return s.str();
    }
    const bool lower = std::isfinite(min), upper = std::isfinite(max);
    if (lower && upper)
      s << "in " << (min_open ? "(" : "[") << min << ", " << max << (max_open ? ")" : "]");
    else if (lower)
      s << (min_open ? "> " : ">= ") << min;
    else if (upper)
      s << (max_open ? "< " : "<= ") << max;
    return s.str();
  }
};
constexpr Range any() { return {}; }
constexpr Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
constexpr Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, false}; }
constexpr Range between(double lo, double hi) { return {lo, hi, false, false}; }     // [lo, hi]
constexpr Range from_to(double lo, double hi) { return {lo, hi, false, true}; }      // [lo, hi)
constexpr Range above_up_to(double lo, double hi) { return {lo, hi, true, false}; }  // (lo, hi]
constexpr Range one_of(const char* choices) {                                        // "a|b|c": indices 0 .. 2
  int n = 1;
  for (const char* c = choices; *c; ++c) n += *c == '|';
  return {0, static_cast<double>(n - 1), false, false, choices};
}

struct FieldInfo {
  const char* name;  // the PyTorch reference's snake_case name
  FieldType type;
  double default_value;
  Range range;
};

// One row of a table over struct S: its description and how to read and write it as a double.
template <class S>
struct Field {
  FieldInfo info;
  double (*get)(const S&);
  void (*set)(S&, double);
};

// Checks `value` against the field's type and range: a c10::ValueError naming the field.
inline void check_field(const FieldInfo& i, double value) {
  const bool integral = i.type != FieldType::kReal;
  TORCH_CHECK_VALUE(std::isfinite(value) && (!integral || value == std::floor(value)), "Expected ",
                    integral ? "an integer" : "a finite number", " for ", i.name, " but received ", value);
  TORCH_CHECK_VALUE(i.range.contains(value), "Expected ", i.name, " ", i.range.describe(), " but received ", value);
}

// check_field, then sets it.
template <class S>
void set_field(S& s, const Field<S>& f, double value) {
  check_field(f.info, value);
  f.set(s, value);
}

// Every field of `s` against its own range (a struct built in C++, not through set_field).
template <class S>
void check_fields(const S& s, const std::vector<Field<S>>& fields) {
  for (const auto& f : fields) check_field(f.info, f.get(s));
}

}  // namespace rils

// Row → member: plain (a config, a stats record) or LibTorch's option idiom with accessors.
#define RILS_FIELD(T, name, default_value, range) T name = default_value;
#define RILS_ARG(T, name, default_value, range) TORCH_ARG(T, name) = default_value;

// Row → table entry of struct S whose value is `s.name` (plain) or `s.PATH name()` (TORCH_ARG; PATH is
// a member prefix such as `optim.`, or empty).
#define RILS_FIELD_ENTRY(S, T, name, default_value, range)                                       \
  ::rils::Field<S>{{#name, ::rils::field_type<T>(), ::rils::to_double<T>(default_value), range}, \
                   [](const S& s) { return ::rils::to_double(s.name); },                         \
                   [](S& s, double v) { s.name = ::rils::from_double<T>(v); }},
#define RILS_ARG_ENTRY(S, PATH, T, name, default_value, range)                                   \
  ::rils::Field<S>{{#name, ::rils::field_type<T>(), ::rils::to_double<T>(default_value), range}, \
                   [](const S& s) { return ::rils::to_double(s.PATH name()); },                  \
                   [](S& s, double v) { s.PATH name(::rils::from_double<T>(v)); }},
