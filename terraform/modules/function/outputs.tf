output "name" {
  description = "Cloud Run service name."
  value       = google_cloud_run_v2_service.this.name
}

output "uri" {
  description = "The service's https://...run.app URL."
  value       = google_cloud_run_v2_service.this.uri
}

output "service_account_email" {
  description = "Email of the service account the function runs as."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "IAM member string of that service account."
  value       = "serviceAccount:${google_service_account.this.email}"
}
