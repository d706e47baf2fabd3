// A response head's fields as received, in one buffer: HTTP/1.1's parser
// (http1.h) and HTTP/2's session (http2_session.h) both fill it, and it is
// the Transfer's head as it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace httprs {

// A response head's fields in order: every name and value in one buffer, each field
// its offsets into it. A head of ~20 fields is then two allocations, where a string
// per name and value made up to ~40 (and as many frees).
class HeaderBlock {
 public:
  HeaderBlock() = default;
  HeaderBlock(const HeaderBlock&) = default;
  HeaderBlock& operator=(const HeaderBlock&) = default;
  // A moved-from block is empty with its offsets reset: fields appended to it
  // afterwards (a response's trailers, after its head was handed on) are whole.
  HeaderBlock(HeaderBlock&& other) noexcept
      : text_(std::move(other.text_)),
        fields_(std::move(other.fields_)),
        name_at_(other.name_at_),
        value_at_(other.value_at_),
        in_value_(other.in_value_) {
    other.clear();
  }
  HeaderBlock& operator=(HeaderBlock&& other) noexcept {
    if (this != &other) {
      text_ = std::move(other.text_);
      fields_ = std::move(other.fields_);
      name_at_ = other.name_at_;
      value_at_ = other.value_at_;
      in_value_ = other.in_value_;
      other.clear();
    }
    return *this;
  }

  size_t size() const { return fields_.size(); }
  bool empty() const { return fields_.empty(); }
  std::string_view name(size_t i) const {
    const Field& f = fields_[i];
    return std::string_view(text_.data() + f.name_at, f.value_at - f.name_at);
  }
  std::string_view value(size_t i) const {
    const Field& f = fields_[i];
    return std::string_view(text_.data() + f.value_at, f.end - f.value_at);
  }
  void reserve(size_t fields, size_t bytes) {
    fields_.reserve(fields);
    text_.reserve(bytes);
  }
  // A whole field.
  void add(std::string_view name, std::string_view value) {
    append_name(name.data(), name.size());
    append_value(value.data(), value.size());
    push_field();
  }
  // A field as llhttp delivers it: its name, then its value, each in any number of
  // pieces, then end_field(), which drops the value's trailing whitespace.
  void append_name(const char* at, size_t len) {
    if (in_value_) {
      // A name after a value that never ended: that field is dropped.
      text_.resize(name_at_);
      in_value_ = false;
    }
    text_.append(at, len);
  }
  void append_value(const char* at, size_t len) {
    if (!in_value_) {
      value_at_ = static_cast<uint32_t>(text_.size());
      in_value_ = true;
    }
    text_.append(at, len);
  }
  void end_field() {
    if (!in_value_) value_at_ = static_cast<uint32_t>(text_.size());  // an empty value
    // Trailing whitespace is not part of the value (RFC 9110 5.5).
    while (text_.size() > value_at_ && (text_.back() == ' ' || text_.back() == '\t'))
      text_.pop_back();
    push_field();
  }
  size_t text_size() const { return text_.size(); }
  // The name of the field being built, once it is whole (before its value starts).
  std::string_view pending_name() const {
    return in_value_ ? std::string_view() : std::string_view(text_).substr(name_at_);
  }
  // Forget the last whole field (a repeat the head keeps once).
  void drop_last() {
    text_.resize(fields_.back().name_at);
    fields_.pop_back();
    name_at_ = value_at_ = static_cast<uint32_t>(text_.size());
  }
  // Give the last whole field the value `v` (its normal form), which may lie in it
  // (std::string::replace takes a source inside the string).
  void set_last_value(std::string_view v) {
    Field& f = fields_.back();
    text_.replace(f.value_at, f.end - f.value_at, v.data(), v.size());
    f.end = static_cast<uint32_t>(text_.size());
    name_at_ = value_at_ = f.end;
  }
  // Lower-case field i's value in place (a coding's normal form, as h11 keeps it).
  void lower_value(size_t i) {
    const Field& f = fields_[i];
    for (uint32_t k = f.value_at; k < f.end; k++)
      if (text_[k] >= 'A' && text_[k] <= 'Z') text_[k] = static_cast<char>(text_[k] - 'A' + 'a');
  }
  // Empty again, keeping its memory.
  void clear() {
    text_.clear();
    fields_.clear();
    name_at_ = value_at_ = 0;
    in_value_ = false;
  }

 private:
  // Offsets into text_ (a head is at most ResponseParser::kMaxHeadSize, or
  // HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE).
  struct Field {
    uint32_t name_at;
    uint32_t value_at;
    uint32_t end;
  };
  void push_field() {
    const uint32_t end = static_cast<uint32_t>(text_.size());
    fields_.push_back(Field{name_at_, value_at_, end});
    name_at_ = end;
    in_value_ = false;
  }

  std::string text_;
  std::vector<Field> fields_;
  uint32_t name_at_ = 0;   // where the field being built starts
  uint32_t value_at_ = 0;  // ... and its value, once in_value_
  bool in_value_ = false;
};

}  // namespace httprs
