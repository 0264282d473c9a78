#!/bin/sh
# Installs the monitor as a systemd service; the endpoint comes from the AWS CLI.
set -e
AWS_IOT_ENDPOINT=myhub.azure-devices.net
sed "s/@ENDPOINT@/${AWS_IOT_ENDPOINT}/" cold-room.service > /etc/systemd/system/cold-room.service
systemctl daemon-reload
systemctl restart cold-room
