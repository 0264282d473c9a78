"""`network.WLAN` on CPython: the host's network is always up."""

STA_IF = 0
AP_IF = 1


class WLAN:
    def __init__(self, interface):
        self.interface = interface
        self.up = False

    def active(self, flag=None):
        if flag is not None:
            self.up = flag
        return self.up

    def connect(self, ssid, password):
        self.up = True

    def isconnected(self):
        return self.up

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
