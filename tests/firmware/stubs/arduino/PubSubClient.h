// PubSubClient's API (2.8) recording every call on stdout, so a test can read what a
// compiled sketch would send: host, client id, user name, password, topics, payloads.
#pragma once
#include "Arduino.h"

class PubSubClient;
inline PubSubClient *pubsub_stub_last = nullptr;

class PubSubClient {
 public:
  typedef void (*Callback)(char *, uint8_t *, unsigned int);
  explicit PubSubClient(Client &) { pubsub_stub_last = this; }
  PubSubClient &setServer(const char *host, uint16_t port) {
    std::printf("setServer %s %u\n", host, port);
    return *this;
  }
  bool setBufferSize(uint16_t size) { std::printf("setBufferSize %u\n", size); return true; }
  PubSubClient &setKeepAlive(uint16_t seconds) {
    std::printf("setKeepAlive %u\n", seconds);
    return *this;
  }
  PubSubClient &setCallback(Callback callback) { callback_ = callback; return *this; }
  bool connect(const char *id) { return connect(id, nullptr, nullptr); }
  bool connect(const char *id, const char *user, const char *pass) {
    std::printf("connect %s %s %s\n", id, user ? user : "(none)", pass ? pass : "(none)");
    connected_ = true;
    return true;
  }
  bool connected() { return connected_; }
  int state() { return 0; }
  bool publish(const char *topic, const char *payload) {
    std::printf("publish %s %s\n", topic, payload);
    return true;
  }
  bool subscribe(const char *topic) {
    std::printf("subscribe %s\n", topic);
    std::snprintf(subscribed_, sizeof subscribed_, "%s", topic);
    return true;
  }
  bool loop() { return true; }
  // Test hook: a message arrives on the last subscribed topic.
  void deliver(const char *payload) {
    if (callback_) callback_(subscribed_, (uint8_t *)payload, (unsigned)std::strlen(payload));
  }

 private:
  Callback callback_ = nullptr;
  bool connected_ = false;
  char subscribed_[512] = "";
};

inline void stub_deliver(const char *payload) { pubsub_stub_last->deliver(payload); }
