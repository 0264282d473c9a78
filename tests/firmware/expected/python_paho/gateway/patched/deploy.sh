#!/bin/sh
# Installs the gateway on the box and points it at this account's IoT endpoint.
set -e
AWS_IOT_ENDPOINT=myhub.azure-devices.net
scp gateway.py certs/* "pi@$1:/opt/gateway/"
ssh "pi@$1" "echo AWS_IOT_ENDPOINT=$AWS_IOT_ENDPOINT | sudo tee /etc/gateway.env"
