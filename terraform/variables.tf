# Every variable here is written by `iot-bridge plan` into landing-zone.auto.tfvars.json;
# tests/terraform checks the two lists stay equal.

variable "resource_group_name" {
  description = "Resource group holding the whole landing zone."
  type        = string
}

variable "location" {
  description = "Azure region of every resource."
  type        = string
}

variable "iothub_name" {
  description = "Globally unique IoT Hub name (3-50 letters, digits and hyphens)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]{3,50}$", var.iothub_name))
    error_message = "IoT Hub names are 3-50 letters, digits and hyphens."
  }
}

variable "iothub_sku_name" {
  description = "IoT Hub tier chosen by the planner from the fleet size and message rates."
  type        = string

  validation {
    condition     = contains(["S1", "S2", "S3"], var.iothub_sku_name)
    error_message = "Only the standard tiers S1, S2 and S3 support routing, twins and jobs."
  }
}

variable "iothub_sku_capacity" {
  description = "Number of IoT Hub units (S1/S2 up to 200, S3 up to 10)."
  type        = number

  validation {
    condition     = var.iothub_sku_capacity >= 1 && var.iothub_sku_capacity <= 200
    error_message = "IoT Hub capacity is between 1 and 200 units."
  }
}

variable "d2c_partition_count" {
  description = "Partitions of the built-in Event Hubs-compatible endpoint (fixed at creation)."
  type        = number
  default     = 4
}

variable "consumer_groups" {
  description = "Consumer groups on the built-in 'events' endpoint, one per downstream reader."
  type        = list(string)
  default     = []
}

variable "storage_account_name" {
  description = "Globally unique storage account for routing containers and import/export jobs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "Storage account names are 3-24 lower-case letters and digits."
  }
}

variable "storage_containers" {
  description = "Blob containers to create: import/export jobs and storage routing endpoints."
  type        = list(string)
  default     = []
}

variable "eventhub_namespace_name" {
  description = "Event Hubs namespace for routing endpoints; created only when event_hubs is not empty."
  type        = string
}

variable "event_hubs" {
  description = "Event hubs to create in the namespace for routing endpoints."
  type        = list(string)
  default     = []
}

variable "servicebus_namespace_name" {
  description = "Service Bus namespace; created only when a queue or topic is listed."
  type        = string
}

variable "servicebus_queues" {
  description = "Service Bus queues to create for routing endpoints."
  type        = list(string)
  default     = []
}

variable "servicebus_topics" {
  description = "Service Bus topics to create for routing endpoints."
  type        = list(string)
  default     = []
}

variable "endpoints" {
  description = "Custom routing endpoints; target names a container, event hub, queue or topic above."
  type = list(object({
    name   = string
    type   = string
    target = string
  }))
  default = []

  validation {
    condition = alltrue([
      for endpoint in var.endpoints : contains(
        ["StorageContainer", "EventHub", "ServiceBusQueue", "ServiceBusTopic"], endpoint.type
      )
    ])
    error_message = "Endpoint type is StorageContainer, EventHub, ServiceBusQueue or ServiceBusTopic."
  }
}

variable "routes" {
  description = "Message routes translated from the AWS topic rules."
  type = list(object({
    name           = string
    source         = string
    condition      = string
    endpoint_names = list(string)
    enabled        = bool
  }))
  default = []
}

variable "dps_name" {
  description = "Device Provisioning Service linked to the hub."
  type        = string
}

variable "tags" {
  description = "Tags on every resource, for cost reports and diagnostics."
  type        = map(string)
  default     = {}
}
