"""Topic helpers copied from an AWS IoT sample repository (vendored, do not edit)."""


def shadow_topic(thing, shadow=None, operation="update"):
    if shadow is None:
        return "$aws/things/%s/shadow/%s" % (thing, operation)
    return "$aws/things/%s/shadow/name/%s/%s" % (thing, shadow, operation)
