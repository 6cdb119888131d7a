# One YDS function: its own service account (the identity it runs as, with no role by default:
# the root module grants each one exactly what its function needs) and its Cloud Run v2
# service. The container listens on $PORT (Cloud Run sets 8080) and answers GET /healthz.

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = substr(var.name, 0, 30)
  display_name = "YDS ${var.function}"
  description  = "Runtime identity of the YDS ${var.function} Cloud Run service."
}

# Read access to exactly the secrets this function mounts, granted before the service exists:
# Cloud Run checks it when it creates a revision.
resource "google_secret_manager_secret_iam_member" "env" {
  for_each = var.secret_env

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.this.email}"
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.project_id
  location            = var.region
  name                = var.name
  description         = "YDS ${var.function}"
  ingress             = var.ingress
  deletion_protection = var.deletion_protection
  labels              = merge(var.labels, { yds-function = var.function })

  template {
    service_account                  = google_service_account.this.email
    max_instance_request_concurrency = var.concurrency
    timeout                          = "${var.timeout_seconds}s"
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    labels                           = merge(var.labels, { yds-function = var.function })

    scaling {
      min_instance_count = var.min_instances
      max_instance_count = var.max_instances
    }

    containers {
      name  = var.function
      image = var.image

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        # CPU only while a request is in flight (billing per request); boosted at start-up.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = var.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret
              version = env.value.version
            }
          }
        }
      }

      # /healthz pings MongoDB (web, which has no database, answers at once): an instance becomes
      # ready only once its database answers. No liveness probe: restarting instances during a
      # database blip would not help.
      startup_probe {
        initial_delay_seconds = 0
        period_seconds        = 3
        timeout_seconds       = 2
        failure_threshold     = 10
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  traffic {
    type    = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
    percent = 100
  }

  depends_on = [google_secret_manager_secret_iam_member.env]
}
