// 256dpi's arduino-mqtt (MQTTClient) API, recording every call on stdout.
#pragma once
#include "Arduino.h"

class MQTTClient;
inline MQTTClient *mqttclient_stub_last = nullptr;

class MQTTClient {
 public:
  typedef void (*Handler)(String &topic, String &payload);
  explicit MQTTClient(int bufferSize = 128) {
    std::printf("buffer %d\n", bufferSize);
    mqttclient_stub_last = this;
  }
  void begin(const char *host, int port, Client &) { std::printf("begin %s %d\n", host, port); }
  void onMessage(Handler handler) { handler_ = handler; }
  void setKeepAlive(int seconds) { std::printf("setKeepAlive %d\n", seconds); }
  bool connect(const char *id, const char *user = nullptr, const char *pass = nullptr) {
    std::printf("connect %s %s %s\n", id, user ? user : "(none)", pass ? pass : "(none)");
    return true;
  }
  bool publish(const char *topic, const char *payload) {
    std::printf("publish %s %s\n", topic, payload);
    return true;
  }
  bool publish(const char *topic, const String &payload) { return publish(topic, payload.c_str()); }
  bool subscribe(const char *topic) {
    std::printf("subscribe %s\n", topic);
    topic_ = topic;
    return true;
  }
  bool loop() { return true; }
  void deliver(const char *payload) {
    String topic(topic_), body(payload);
    if (handler_) handler_(topic, body);
  }

 private:
  Handler handler_ = nullptr;
  const char *topic_ = "";
};

inline void stub_deliver(const char *payload) { mqttclient_stub_last->deliver(payload); }
