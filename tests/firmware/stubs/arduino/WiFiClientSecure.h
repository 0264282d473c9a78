#pragma once
#include "Arduino.h"

class WiFiClientSecure : public Client {
 public:
  void setCACert(const char *) {}
  void setCertificate(const char *) {}
  void setPrivateKey(const char *) {}
};
