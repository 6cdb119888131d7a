output "gateway_url" {
  description = "Base URL of the public API (API Gateway)."
  value       = "https://${google_api_gateway_gateway.yds.default_hostname}"
}

output "managed_service" {
  description = "API Gateway's managed service: restrict API keys to it (gcloud services api-keys create --api-target=service=...)."
  value       = google_api_gateway_api.yds.managed_service
}

output "bucket_name" {
  description = "Bucket holding dataset files (datasets/) and import staging (temp/)."
  value       = google_storage_bucket.data.name
}

output "queue_name" {
  description = "Full name of the Cloud Tasks queue (projects/P/locations/L/queues/Q)."
  value       = google_cloud_tasks_queue.import.id
}

output "process_chunk_url" {
  description = "URL of process-chunk (internal ingress; invocable by the tasks invoker service account only)."
  value       = module.function["process-chunk"].uri
}

output "function_urls" {
  description = "Cloud Run URL of every function (the public ones accept only API Gateway's identity)."
  value       = { for name, f in module.function : name => f.uri }
}

output "service_accounts" {
  description = "Service account email of every function, of the tasks invoker and of the gateway."
  value = merge(
    { for name, f in module.function : name => f.service_account_email },
    {
      tasks-invoker = google_service_account.tasks_invoker.email
      gateway       = google_service_account.gateway.email
    },
  )
}

output "image_repository" {
  description = "Artifact Registry path to push the function images to (IMAGE_REPOSITORY/FUNCTION:TAG)."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "mongodb_secret_id" {
  description = "Secret to add the MongoDB connection string to (gcloud secrets versions add)."
  value       = google_secret_manager_secret.mongodb_uri.secret_id
}

output "api_keys_secret_id" {
  description = "Secret to add YDS_API_KEYS to (`key` or `key:tenant`, comma-separated)."
  value       = google_secret_manager_secret.api_keys.secret_id
}
