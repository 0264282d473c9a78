output "resource_group_name" {
  description = "Resource group of the landing zone."
  value       = azurerm_resource_group.this.name
}

output "iothub_id" {
  description = "Resource id of the IoT Hub."
  value       = azurerm_iothub.this.id
}

output "iothub_hostname" {
  description = "Host name devices and the bridge connect to."
  value       = azurerm_iothub.this.hostname
}

output "iothub_events_endpoint" {
  description = "Event Hubs-compatible endpoint of the built-in 'events' route target."
  value       = azurerm_iothub.this.event_hub_events_endpoint
}

output "iothub_principal_id" {
  description = "Managed identity the hub uses to reach its routing endpoints and storage."
  value       = azurerm_iothub.this.identity[0].principal_id
}

output "storage_account_name" {
  description = "Storage account for routing containers and import/export jobs."
  value       = azurerm_storage_account.this.name
}

output "storage_blob_endpoint" {
  description = "Blob endpoint for import/export job container URIs."
  value       = azurerm_storage_account.this.primary_blob_endpoint
}

output "dps_id_scope" {
  description = "ID scope devices use with DPS."
  value       = azurerm_iothub_dps.this.id_scope
}

output "dps_device_provisioning_host_name" {
  description = "Global DPS host name devices connect to."
  value       = azurerm_iothub_dps.this.device_provisioning_host_name
}

output "route_names" {
  description = "Names of the routes created from the AWS topic rules."
  value       = sort(keys(azurerm_iothub_route.this))
}
