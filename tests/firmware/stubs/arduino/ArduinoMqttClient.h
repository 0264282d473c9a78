// ArduinoMqttClient's API (0.1.x), recording every call on stdout.
#pragma once
#include <string>
#include "Arduino.h"

class MqttClient;
inline MqttClient *arduinomqtt_stub_last = nullptr;

class MqttClient {
 public:
  explicit MqttClient(Client &) { arduinomqtt_stub_last = this; }
  void setId(const char *id) { id_ = id; }
  void setUsernamePassword(const char *user, const char *pass) {
    user_ = user;
    pass_ = pass;
  }
  void setKeepAliveInterval(unsigned long ms) { std::printf("keepalive_ms %lu\n", ms); }
  int connect(const char *host, uint16_t port) {
    // Like the library: a user name is sent only when set, a password only when non-empty.
    std::printf("connect %s %u id=%s user=%s password=%s\n", host, port, id_.c_str(),
                user_.empty() ? "(none)" : user_.c_str(), pass_.empty() ? "(none)" : "set");
    return 1;
  }
  int beginMessage(const char *topic) { body_.clear(); topic_ = topic; return 1; }
  size_t print(const char *text) { body_ += text; return body_.size(); }
  int endMessage() { std::printf("publish %s %s\n", topic_.c_str(), body_.c_str()); return 1; }
  int subscribe(const char *topic) { std::printf("subscribe %s\n", topic); return 1; }
  void poll() {}
  int connected() { return 0; }
  void onMessage(void (*)(int)) {}

 private:
  std::string id_, user_, pass_, topic_, body_;
};

inline void stub_deliver(const char *) {}
