// Third-party helper library (vendored): builds shadow topics for PubSubClient users.
#define AWS_SHADOW_UPDATE(thing) "$aws/things/" thing "/shadow/update"
