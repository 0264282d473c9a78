// Just enough of the Arduino core for the corpus sketches to compile and run on the host.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>

#define PROGMEM
typedef uint8_t byte;
inline void delay(unsigned long) {}
inline unsigned long millis() { return 0; }
#define HEX 16
inline long random(long limit) { return 0x2a % limit; }

class Client {};

// Arduino's String, as far as the sketches use it.
#include <string>
class String {
 public:
  String(const char *text = "") : value_(text) {}
  String(const std::string &text) : value_(text) {}
  String(long number, int base) {
    char digits[32];
    std::snprintf(digits, sizeof digits, base == 16 ? "%lx" : "%ld", number);
    value_ = digits;
  }
  String &operator+=(const String &more) { value_ += more.value_; return *this; }
  const char *c_str() const { return value_.c_str(); }
  friend String operator+(const String &a, const String &b) { return String(a.value_ + b.value_); }
  friend String operator+(const char *a, const String &b) { return String(std::string(a) + b.value_); }
  friend String operator+(const String &a, const char *b) { return String(a.value_ + b); }

 private:
  std::string value_;
};

struct WiFiClass {
  void begin(const char *, const char *) {}
};
inline WiFiClass WiFi;

// Serial, printing nothing: the stubs' own lines are what a test reads.
struct SerialStub {
  void begin(unsigned long) {}
  template <class T>
  void print(const T &) {}
  template <class T>
  void println(const T &) {}
  void println() {}
};
inline SerialStub Serial;
