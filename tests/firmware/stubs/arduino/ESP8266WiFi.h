#pragma once
#include "Arduino.h"

namespace BearSSL {
class X509List {
 public:
  // A PEM string, or a DER array and its length (as in sketches that embed ca.h).
  explicit X509List(const char *pem) : pem_(pem) {}
  X509List(const uint8_t *, size_t) {}
  const char *pem() const { return pem_; }

 private:
  const char *pem_ = nullptr;
};
class PrivateKey {
 public:
  explicit PrivateKey(const char *) {}
  PrivateKey(const uint8_t *, size_t) {}
};
// The trust anchors the sketch last set, for a test to check (nothing is printed, so
// the calls a sketch makes read the same as before).
inline const X509List *bearssl_stub_trust = nullptr;
class WiFiClientSecure : public Client {
 public:
  void setTrustAnchors(const X509List *list) { bearssl_stub_trust = list; }
  void setClientRSACert(const X509List *, const PrivateKey *) {}
  void setBufferSizes(int, int) {}
  void setInsecure() {}
};
}  // namespace BearSSL
