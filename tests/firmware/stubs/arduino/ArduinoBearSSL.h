#pragma once
#include "Arduino.h"
class BearSSLClient : public Client {
 public:
  explicit BearSSLClient(Client &) {}
  void setEccSlot(int, const char *) {}
};
