// Just enough of the Arduino core for the corpus sketches to compile and run on the host.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>

#define PROGMEM
typedef uint8_t byte;
inline void delay(unsigned long) {}

class Client {};

struct WiFiClass {
  void begin(const char *, const char *) {}
};
inline WiFiClass WiFi;
