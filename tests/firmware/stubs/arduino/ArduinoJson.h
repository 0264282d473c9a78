#pragma once
#include "Arduino.h"

template <int N>
struct StaticJsonDocument {
  double value = 0;
  struct Ref {
    double *target;
    Ref &operator=(double x) { *target = x; return *this; }
  };
  Ref operator[](const char *) { return Ref{&value}; }
};

template <int N>
size_t serializeJson(StaticJsonDocument<N> &doc, char *out) {
  return std::sprintf(out, "{\"celsius\":%.1f}", doc.value);
}
