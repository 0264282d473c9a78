locals {
  tags = merge({ "managed-by" = "iot-bridge", "workload" = "aws-iot-migration" }, var.tags)

  endpoint_types = ["StorageContainer", "EventHub", "ServiceBusQueue", "ServiceBusTopic"]
  endpoints_by_type = {
    for type in local.endpoint_types :
    type => { for endpoint in var.endpoints : endpoint.name => endpoint if endpoint.type == type }
  }

  create_eventhubs  = length(var.event_hubs) > 0
  create_servicebus = length(var.servicebus_queues) + length(var.servicebus_topics) > 0
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
  tags     = local.tags
}

# ---------------------------------------------------------------- IoT Hub

resource "azurerm_iothub" "this" {
  name                        = var.iothub_name
  resource_group_name         = azurerm_resource_group.this.name
  location                    = azurerm_resource_group.this.location
  event_hub_partition_count   = var.d2c_partition_count
  event_hub_retention_in_days = 1
  min_tls_version             = "1.2"
  #checkov:skip=CKV_AZURE_108:devices connect over the internet as they do to AWS IoT Core today; a private endpoint would cut the fleet off
  public_network_access_enabled = true

  sku {
    name     = var.iothub_sku_name
    capacity = var.iothub_sku_capacity
  }

  # Routing endpoints authenticate with this identity, so no connection string is stored.
  identity {
    type = "SystemAssigned"
  }

  # Kept as the safety net: if the planner's catch-all telemetry route is disabled or
  # removed, device messages no route matches still reach the built-in endpoint.
  fallback_route {
    source         = "DeviceMessages"
    condition      = "true"
    endpoint_names = ["events"]
    enabled        = true
  }

  tags = local.tags
}

resource "azurerm_iothub_consumer_group" "this" {
  for_each               = toset(var.consumer_groups)
  name                   = each.value
  iothub_name            = azurerm_iothub.this.name
  eventhub_endpoint_name = "events"
  resource_group_name    = azurerm_resource_group.this.name
}

# ---------------------------------------------------------------- Storage

resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV_AZURE_59:the bridge writes import/export job blobs from outside Azure; harden with network rules where it runs in a VNet
  #checkov:skip=CKV2_AZURE_33:a private endpoint needs a VNet this module does not own; add one in the root module if the bridge runs in Azure
  #checkov:skip=CKV2_AZURE_40:azurerm 3.x creates containers with the account key unless the caller's provider sets storage_use_azuread
  #checkov:skip=CKV2_AZURE_1:platform-managed keys; customer-managed keys need a Key Vault the operator owns
  #checkov:skip=CKV_AZURE_33:the account holds blobs only; no queue is ever created on it
  name                            = var.storage_account_name
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "GRS"
  min_tls_version                 = "TLS1_2"
  enable_https_traffic_only       = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = true

  # SAS tokens for import/export jobs are minted per job and should never live long.
  sas_policy {
    expiration_period = "01.00:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    delete_retention_policy {
      days = 7
    }
  }

  tags = local.tags
}

resource "azurerm_storage_container" "this" {
  #checkov:skip=CKV2_AZURE_21:blob read logging needs a Log Analytics workspace chosen by the operator; wire diagnostic settings in the root module
  for_each              = toset(var.storage_containers)
  name                  = each.value
  storage_account_name  = azurerm_storage_account.this.name
  container_access_type = "private"
}

resource "azurerm_role_assignment" "hub_blob" {
  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_iothub.this.identity[0].principal_id
}

# ---------------------------------------------------------------- Event Hubs

resource "azurerm_eventhub_namespace" "this" {
  count                        = local.create_eventhubs ? 1 : 0
  name                         = var.eventhub_namespace_name
  resource_group_name          = azurerm_resource_group.this.name
  location                     = azurerm_resource_group.this.location
  sku                          = "Standard"
  capacity                     = 1
  minimum_tls_version          = "1.2"
  local_authentication_enabled = false
  tags                         = local.tags
}

resource "azurerm_eventhub" "this" {
  for_each            = toset(var.event_hubs)
  name                = each.value
  namespace_name      = azurerm_eventhub_namespace.this[0].name
  resource_group_name = azurerm_resource_group.this.name
  partition_count     = 4
  message_retention   = 1
}

resource "azurerm_role_assignment" "hub_eventhubs" {
  count                = local.create_eventhubs ? 1 : 0
  scope                = azurerm_eventhub_namespace.this[0].id
  role_definition_name = "Azure Event Hubs Data Sender"
  principal_id         = azurerm_iothub.this.identity[0].principal_id
}

# ---------------------------------------------------------------- Service Bus

resource "azurerm_servicebus_namespace" "this" {
  #checkov:skip=CKV_AZURE_201:platform-managed keys; customer-managed keys need Premium and a Key Vault the operator owns
  #checkov:skip=CKV_AZURE_199:double encryption is a Premium-only feature; Standard is enough for relayed telemetry
  #checkov:skip=CKV_AZURE_204:AWS-side consumers being migrated read these queues from outside Azure during the window
  count               = local.create_servicebus ? 1 : 0
  name                = var.servicebus_namespace_name
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  # Standard is the smallest tier with topics.
  sku                 = "Standard"
  minimum_tls_version = "1.2"
  local_auth_enabled  = false
  tags                = local.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_servicebus_queue" "this" {
  for_each     = toset(var.servicebus_queues)
  name         = each.value
  namespace_id = azurerm_servicebus_namespace.this[0].id
}

resource "azurerm_servicebus_topic" "this" {
  for_each     = toset(var.servicebus_topics)
  name         = each.value
  namespace_id = azurerm_servicebus_namespace.this[0].id
}

resource "azurerm_role_assignment" "hub_servicebus" {
  count                = local.create_servicebus ? 1 : 0
  scope                = azurerm_servicebus_namespace.this[0].id
  role_definition_name = "Azure Service Bus Data Sender"
  principal_id         = azurerm_iothub.this.identity[0].principal_id
}

# ---------------------------------------------------------------- Routing

resource "azurerm_iothub_endpoint_storage_container" "this" {
  for_each                   = local.endpoints_by_type["StorageContainer"]
  name                       = each.key
  resource_group_name        = azurerm_resource_group.this.name
  iothub_id                  = azurerm_iothub.this.id
  authentication_type        = "identityBased"
  endpoint_uri               = azurerm_storage_account.this.primary_blob_endpoint
  container_name             = azurerm_storage_container.this[each.value.target].name
  file_name_format           = "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}"
  batch_frequency_in_seconds = 60
  max_chunk_size_in_bytes    = 10485760
  encoding                   = "JSON"
  depends_on                 = [azurerm_role_assignment.hub_blob]
}

resource "azurerm_iothub_endpoint_eventhub" "this" {
  for_each            = local.endpoints_by_type["EventHub"]
  name                = each.key
  resource_group_name = azurerm_resource_group.this.name
  iothub_id           = azurerm_iothub.this.id
  authentication_type = "identityBased"
  endpoint_uri        = "sb://${azurerm_eventhub_namespace.this[0].name}.servicebus.windows.net"
  entity_path         = azurerm_eventhub.this[each.value.target].name
  depends_on          = [azurerm_role_assignment.hub_eventhubs]
}

resource "azurerm_iothub_endpoint_servicebus_queue" "this" {
  for_each            = local.endpoints_by_type["ServiceBusQueue"]
  name                = each.key
  resource_group_name = azurerm_resource_group.this.name
  iothub_id           = azurerm_iothub.this.id
  authentication_type = "identityBased"
  endpoint_uri        = "sb://${azurerm_servicebus_namespace.this[0].name}.servicebus.windows.net"
  entity_path         = azurerm_servicebus_queue.this[each.value.target].name
  depends_on          = [azurerm_role_assignment.hub_servicebus]
}

resource "azurerm_iothub_endpoint_servicebus_topic" "this" {
  for_each            = local.endpoints_by_type["ServiceBusTopic"]
  name                = each.key
  resource_group_name = azurerm_resource_group.this.name
  iothub_id           = azurerm_iothub.this.id
  authentication_type = "identityBased"
  endpoint_uri        = "sb://${azurerm_servicebus_namespace.this[0].name}.servicebus.windows.net"
  entity_path         = azurerm_servicebus_topic.this[each.value.target].name
  depends_on          = [azurerm_role_assignment.hub_servicebus]
}

resource "azurerm_iothub_route" "this" {
  for_each            = { for route in var.routes : route.name => route }
  name                = each.key
  resource_group_name = azurerm_resource_group.this.name
  iothub_name         = azurerm_iothub.this.name
  source              = each.value.source
  condition           = each.value.condition
  endpoint_names      = each.value.endpoint_names
  enabled             = each.value.enabled

  # Routes name endpoints by string, so Terraform cannot see the dependency by itself.
  depends_on = [
    azurerm_iothub_endpoint_storage_container.this,
    azurerm_iothub_endpoint_eventhub.this,
    azurerm_iothub_endpoint_servicebus_queue.this,
    azurerm_iothub_endpoint_servicebus_topic.this,
  ]
}

# ---------------------------------------------------------------- DPS

# DPS registers devices in the hub, so its link needs registry write and device connect.
resource "azurerm_iothub_shared_access_policy" "dps" {
  name                = "dps-link"
  resource_group_name = azurerm_resource_group.this.name
  iothub_name         = azurerm_iothub.this.name
  registry_read       = true
  registry_write      = true
  service_connect     = true
  device_connect      = true
}

resource "azurerm_iothub_dps" "this" {
  name                = var.dps_name
  resource_group_name = azurerm_resource_group.this.name
  location            = azurerm_resource_group.this.location
  allocation_policy   = "Hashed"

  sku {
    name     = "S1"
    capacity = 1
  }

  linked_hub {
    connection_string = azurerm_iothub_shared_access_policy.dps.primary_connection_string
    location          = azurerm_iothub.this.location
  }

  tags = local.tags
}
