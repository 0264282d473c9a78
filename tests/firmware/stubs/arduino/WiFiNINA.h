#pragma once
#include "Arduino.h"
class WiFiClient : public Client {};
