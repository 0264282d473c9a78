#pragma once
#include "Arduino.h"

namespace BearSSL {
class X509List {
 public:
  explicit X509List(const char *) {}
};
class PrivateKey {
 public:
  explicit PrivateKey(const char *) {}
};
class WiFiClientSecure : public Client {
 public:
  void setTrustAnchors(const X509List *) {}
  void setClientRSACert(const X509List *, const PrivateKey *) {}
};
}  // namespace BearSSL
