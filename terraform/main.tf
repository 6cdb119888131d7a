# YDS on Google Cloud: eight Cloud Run services behind API Gateway, a Cloud Tasks queue feeding
# process-chunk, one bucket, MongoDB Atlas reached through a Secret Manager secret.
#
#   client --x-api-key--> API Gateway --(gateway SA, run.invoker)--> import-trigger | uploads | lifecycle | list | images | status
#   browser --(no key)--> API Gateway --(gateway SA, run.invoker)--> web (/, /ui/**, /docs: the web app)
#   import-trigger, lifecycle, process-chunk --(cloudtasks.enqueuer, OIDC as the tasks invoker SA)--> queue
#   queue --(tasks invoker SA, run.invoker; internal ingress)--> process-chunk --> bucket
#   images --(storage.objectViewer on datasets/ only)--> bucket (image files; thumbnails written
#            under datasets/*/thumbnails/; V4 signed URLs of files, signed as itself)
#   uploads --(storage.objectCreator on temp/uploads/ only)--> bucket (starts resumable upload
#            sessions; the client sends the bytes to the session URI, straight to the bucket)
#   import-trigger --(storage.objectViewer on temp/uploads/ only)--> bucket (is an upload complete?)
#
# Every function runs as its own service account holding only what it needs (see the IAM
# section below and modules/function for the secret grants).

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  gateway_region  = coalesce(var.gateway_region, var.region)
  bucket_name     = coalesce(var.bucket_name, "${var.project_id}-${var.name_prefix}-data")
  bucket_location = upper(coalesce(var.bucket_location, var.region))
  queue_name      = coalesce(var.queue_name, "${var.name_prefix}-import")

  # process-chunk's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app): known
  # before the service exists, so process-chunk can be told its own address (it enqueues the
  # chunks of the jobs it plans) without a dependency cycle. Tasks are POSTed to /tasks.
  process_chunk_service_url = "https://${var.name_prefix}-process-chunk-${data.google_project.this.number}.${var.region}.run.app"

  # Environment of every function.
  common_env = {
    RUST_LOG       = var.rust_log
    YDS_DB_NAME    = var.db_name
    YDS_URL_POLICY = "strict"
  }

  # Environment of the functions that read or write the bucket.
  storage_env = {
    YDS_STORAGE_BACKEND = "gcs"
    YDS_GCS_BUCKET      = google_storage_bucket.data.name
  }

  # Environment of the two functions that build the storage and queue backends.
  backend_env = merge(local.storage_env, {
    YDS_QUEUE_BACKEND         = "cloud_tasks"
    YDS_TASKS_QUEUE           = google_cloud_tasks_queue.import.id
    YDS_PROCESS_CHUNK_URL     = "${local.process_chunk_service_url}/tasks"
    YDS_TASKS_SERVICE_ACCOUNT = google_service_account.tasks_invoker.email
  })

  mongodb_secret_env = {
    MONGODB_URI = {
      secret  = google_secret_manager_secret.mongodb_uri.secret_id
      version = var.mongodb_secret_version
    }
  }

  public_secret_env = merge(local.mongodb_secret_env, {
    YDS_API_KEYS = {
      secret  = google_secret_manager_secret.api_keys.secret_id
      version = var.api_keys_secret_version
    }
    YDS_CURSOR_SECRET = {
      secret  = google_secret_manager_secret.cursor_key.secret_id
      version = var.cursor_secret_version
    }
  })

  api_sizing = {
    public        = true
    cpu           = var.api_cpu
    memory        = var.api_memory
    concurrency   = var.api_concurrency
    min_instances = var.api_min_instances
    max_instances = var.api_max_instances
    timeout       = var.api_timeout_seconds
  }

  # The eight functions. Public ones sit behind API Gateway; process-chunk is reached by Cloud
  # Tasks only. tomap() gives every entry the same type, which for_each needs.
  functions = {
    "import-trigger" = merge(local.api_sizing, {
      image      = var.import_trigger_image
      env        = tomap(merge(local.common_env, local.backend_env, { YDS_CHUNK_SIZE = tostring(var.chunk_size) }))
      secret_env = tomap(local.public_secret_env)
    })
    # Renames datasets, and deletes them as jobs: it records the job and enqueues its first
    # step, which process-chunk runs (the bucket is never touched here).
    "lifecycle" = merge(local.api_sizing, {
      image      = var.lifecycle_image
      env        = tomap(merge(local.common_env, local.backend_env))
      secret_env = tomap(local.public_secret_env)
    })
    # Starts resumable upload sessions on the bucket (POST /uploads); the bytes go straight to
    # Cloud Storage, so PUT /uploads/{upload_id} (the local stack's way) only points there.
    "uploads" = merge(local.api_sizing, {
      image      = var.uploads_image
      env        = tomap(merge(local.common_env, local.storage_env, { YDS_UPLOAD_MAX_BYTES = tostring(var.upload_max_bytes) }))
      secret_env = tomap(local.public_secret_env)
    })
    "list" = merge(local.api_sizing, {
      image      = var.list_image
      env        = tomap(local.common_env)
      secret_env = tomap(local.public_secret_env)
    })
    # images alone signs and checks the image URLs a browser fetches without a key.
    "images" = merge(local.api_sizing, {
      image = var.images_image
      env   = tomap(merge(local.common_env, local.storage_env))
      secret_env = tomap(merge(local.public_secret_env, {
        YDS_URL_SIGNING_KEY = {
          secret  = google_secret_manager_secret.url_signing_key.secret_id
          version = var.url_signing_secret_version
        }
      }))
    })
    "status" = merge(local.api_sizing, {
      image      = var.status_image
      env        = tomap(local.common_env)
      secret_env = tomap(local.public_secret_env)
    })
    # The web app: files compiled into the binary, no database, no API key, no secret. Of the
    # configuration it reads only the storage backend (the pages' Content-Security-Policy lets
    # images come from Cloud Storage, where signed URLs point). No YDS_URL_POLICY: it fetches no
    # URL.
    "web" = merge(local.api_sizing, {
      image      = var.web_image
      env        = tomap(merge({ RUST_LOG = var.rust_log }, local.storage_env))
      secret_env = tomap({})
    })
    "process-chunk" = {
      public        = false
      image         = var.process_chunk_image
      cpu           = var.process_chunk_cpu
      memory        = var.process_chunk_memory
      concurrency   = var.process_chunk_concurrency
      min_instances = var.process_chunk_min_instances
      max_instances = var.process_chunk_max_instances
      timeout       = var.process_chunk_timeout_seconds
      env = tomap(merge(local.common_env, local.backend_env, {
        YDS_TASK_MAX_ATTEMPTS  = tostring(var.task_max_attempts)
        YDS_FETCH_TIMEOUT_SECS = tostring(var.fetch_timeout_seconds)
      }))
      secret_env = tomap(local.mongodb_secret_env)
    }
  }

  public_functions = toset([for name, f in local.functions : name if f.public])

  # The API Gateway spec: one path per public route, each to its function's Cloud Run URL.
  # terraform/openapi.yaml is this template rendered with placeholder URLs
  # (python3 terraform/checks/run_checks.py --render), for tools that need a concrete file.
  openapi_spec = templatefile("${path.module}/openapi.yaml.tftpl", {
    import_trigger_url = module.function["import-trigger"].uri
    uploads_url        = module.function["uploads"].uri
    lifecycle_url      = module.function["lifecycle"].uri
    list_url           = module.function["list"].uri
    images_url         = module.function["images"].uri
    status_url         = module.function["status"].uri
    web_url            = module.function["web"].uri
  })
}

# ---------------------------------------------------------------------------------------------
# APIs
# ---------------------------------------------------------------------------------------------

resource "google_project_service" "enabled" {
  for_each = toset([
    "run.googleapis.com",
    "cloudtasks.googleapis.com",
    "storage.googleapis.com",
    "apigateway.googleapis.com",
    "servicemanagement.googleapis.com",
    "servicecontrol.googleapis.com",
    "secretmanager.googleapis.com",
    "iam.googleapis.com",
    # Read for the project number; enable it by hand before the first plan (README.md).
    "cloudresourcemanager.googleapis.com",
    # Images are pushed to the Artifact Registry repository below; API keys are created with
    # `gcloud services api-keys create` (README.md).
    "artifactregistry.googleapis.com",
    "apikeys.googleapis.com",
  ])

  project = var.project_id
  service = each.value
  # Leave the APIs on when this deployment is destroyed: other things in the project may use them.
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------------------------
# Secrets: Terraform creates the secrets; the operator adds their values with
# `gcloud secrets versions add`, so no credential ever enters the Terraform state.
# ---------------------------------------------------------------------------------------------

resource "google_secret_manager_secret" "mongodb_uri" {
  project   = var.project_id
  secret_id = var.mongodb_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# The key that signs pagination cursors (at least 32 characters), shared by the public functions:
# `head -c 48 /dev/urandom | base64 | gcloud secrets versions add yds-cursor-key --data-file=-`
resource "google_secret_manager_secret" "cursor_key" {
  project   = var.project_id
  secret_id = var.cursor_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# The key that signs the images' expiring file and thumbnail URLs (at least 32 characters), read
# by the images function only:
# `head -c 48 /dev/urandom | base64 | gcloud secrets versions add yds-url-signing-key --data-file=-`
resource "google_secret_manager_secret" "url_signing_key" {
  project   = var.project_id
  secret_id = var.url_signing_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret" "api_keys" {
  project   = var.project_id
  secret_id = var.api_keys_secret_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Container images
# ---------------------------------------------------------------------------------------------

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:The images hold only the YDS binaries, no customer data; Google-managed encryption suffices and a CMEK key would add a key ring, rotation and IAM to manage.
  project       = var.project_id
  location      = var.region
  repository_id = var.name_prefix
  format        = "DOCKER"
  description   = "YDS function images (one per function)."
  labels        = var.labels

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Bucket: dataset files under datasets/, import staging under temp/
# ---------------------------------------------------------------------------------------------

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Usage-log buckets are the legacy audit path (and would need a log bucket of their own); object access is audited with Cloud Audit Logs Data Access logs, enabled per project by the operator when required.
  #checkov:skip=CKV_GCP_78:Versioning is off on purpose: datasets/ objects are written once under deterministic keys and can be re-imported from their source, temp/ is scratch; old versions would only add storage cost (soft delete is available through soft_delete_retention_seconds).
  project                     = var.project_id
  name                        = local.bucket_name
  location                    = local.bucket_location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_seconds
  }

  # Uploads (POST /uploads) are kept a day, imported or not: an import reads its upload while it
  # runs, and a day is the time a user has to start it.
  lifecycle_rule {
    condition {
      age            = 1
      matches_prefix = ["temp/uploads/"]
    }
    action {
      type = "Delete"
    }
  }

  # Staged source files of an import: needed only while the import runs.
  lifecycle_rule {
    condition {
      age            = var.temp_retention_days
      matches_prefix = ["temp/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue: plans and chunks, POSTed to process-chunk with an OIDC token
# ---------------------------------------------------------------------------------------------

resource "google_cloud_tasks_queue" "import" {
  project  = var.project_id
  location = var.region
  name     = local.queue_name

  rate_limits {
    max_dispatches_per_second = var.queue_max_dispatches_per_second
    max_concurrent_dispatches = var.queue_max_concurrent_dispatches
  }

  retry_config {
    # process-chunk reads the same number (YDS_TASK_MAX_ATTEMPTS) to know its last attempt.
    max_attempts  = var.task_max_attempts
    min_backoff   = "${var.task_min_backoff_seconds}s"
    max_backoff   = "${var.task_max_backoff_seconds}s"
    max_doublings = var.task_max_doublings
  }

  stackdriver_logging_config {
    sampling_ratio = var.queue_log_sampling_ratio
  }

  lifecycle {
    precondition {
      condition     = var.queue_max_concurrent_dispatches <= var.process_chunk_max_instances * var.process_chunk_concurrency
      error_message = "queue_max_concurrent_dispatches exceeds what process-chunk can take at once (process_chunk_max_instances x process_chunk_concurrency): deliveries would be refused with 429 and burn attempts."
    }
    precondition {
      condition     = var.task_min_backoff_seconds <= var.task_max_backoff_seconds
      error_message = "task_min_backoff_seconds must not exceed task_max_backoff_seconds."
    }
  }

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# Identities that are not a function's own
# ---------------------------------------------------------------------------------------------

# The identity Cloud Tasks presents (OIDC) when it delivers a task to process-chunk.
resource "google_service_account" "tasks_invoker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-tasks-invoker"
  display_name = "YDS Cloud Tasks invoker"
  description  = "Identity of Cloud Tasks deliveries to process-chunk; may invoke process-chunk and nothing else."

  depends_on = [google_project_service.enabled]
}

# The identity API Gateway uses to call the public services.
resource "google_service_account" "gateway" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-gateway"
  display_name = "YDS API Gateway backend caller"
  description  = "Identity of API Gateway towards the public YDS Cloud Run services; may invoke them and nothing else."

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# The eight functions
# ---------------------------------------------------------------------------------------------

module "function" {
  source   = "./modules/function"
  for_each = local.functions

  project_id          = var.project_id
  region              = var.region
  name                = "${var.name_prefix}-${each.key}"
  function            = each.key
  image               = each.value.image
  ingress             = each.value.public ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_ONLY"
  cpu                 = each.value.cpu
  memory              = each.value.memory
  concurrency         = each.value.concurrency
  min_instances       = each.value.min_instances
  max_instances       = each.value.max_instances
  timeout_seconds     = each.value.timeout
  env                 = each.value.env
  secret_env          = each.value.secret_env
  labels              = var.labels
  deletion_protection = var.deletion_protection

  depends_on = [google_project_service.enabled]
}

# ---------------------------------------------------------------------------------------------
# IAM: least privilege, each grant on one resource
# ---------------------------------------------------------------------------------------------

# process-chunk stages sources under temp/, writes datasets/, and deletes both when a dataset is
# deleted; it is the only function that writes to the bucket.
resource "google_storage_bucket_iam_member" "process_chunk_objects" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectAdmin"
  member = module.function["process-chunk"].service_account_member
}

# images serves imported image files (GET /datasets/{id}/images/{image_id}/file): it may read
# datasets/ and nothing else (not the staged sources under temp/).
resource "google_storage_bucket_iam_member" "images_read_datasets" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = module.function["images"].service_account_member

  condition {
    title       = "datasets-only"
    description = "Imported dataset files, not the scratch area."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/datasets/\")"
  }
}

# images keeps the thumbnails it makes under datasets/{id}/thumbnails/ (and replaces one of an
# older thumbnail version): object read, write and delete there, nowhere else.
resource "google_storage_bucket_iam_member" "images_write_thumbnails" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectUser"
  member = module.function["images"].service_account_member

  condition {
    title       = "thumbnails-only"
    description = "Thumbnails the images function makes of imported images."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/datasets/\") && resource.name.extract(\"/objects/datasets/{dataset}/thumbnails/\") != \"\""
  }
}

# uploads starts a resumable upload session for each upload (storage.objects.create on the
# upload's object): under temp/uploads/ and nowhere else. It reads and deletes nothing.
resource "google_storage_bucket_iam_member" "uploads_create_sessions" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectCreator"
  member = module.function["uploads"].service_account_member

  condition {
    title       = "uploads-only"
    description = "Objects of uploads, under temp/uploads/."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/temp/uploads/\")"
  }
}

# import-trigger accepts an upload as a source once its object exists (a session's object
# appears with its last byte): it may read the uploads' metadata, nothing else in the bucket.
resource "google_storage_bucket_iam_member" "import_trigger_read_uploads" {
  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = module.function["import-trigger"].service_account_member

  condition {
    title       = "uploads-only"
    description = "Objects of uploads, under temp/uploads/."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/temp/uploads/\")"
  }
}

# images signs Cloud Storage V4 URLs of image files (an Image's file_url) as its own service
# account, through the IAM Credentials signBlob API: it may do that for itself, nobody else.
resource "google_service_account_iam_member" "images_sign_urls" {
  service_account_id = "projects/${var.project_id}/serviceAccounts/${module.function["images"].service_account_email}"
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.function["images"].service_account_member
}

# import-trigger enqueues the plan task of a job, lifecycle the first step of a delete job;
# process-chunk enqueues the chunk tasks and the next steps.
resource "google_cloud_tasks_queue_iam_member" "enqueuers" {
  for_each = toset(["import-trigger", "lifecycle", "process-chunk"])

  project  = var.project_id
  location = google_cloud_tasks_queue.import.location
  name     = google_cloud_tasks_queue.import.name
  role     = "roles/cloudtasks.enqueuer"
  member   = module.function[each.key].service_account_member
}

# Creating a task that carries an OIDC token of the invoker SA requires actAs on that SA.
resource "google_service_account_iam_member" "enqueuers_act_as_invoker" {
  for_each = toset(["import-trigger", "lifecycle", "process-chunk"])

  service_account_id = google_service_account.tasks_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = module.function[each.key].service_account_member
}

# Only Cloud Tasks' identity may invoke process-chunk (its ingress is internal besides).
resource "google_cloud_run_v2_service_iam_member" "tasks_invoke_process_chunk" {
  project  = var.project_id
  location = var.region
  name     = module.function["process-chunk"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks_invoker.email}"
}

# API Gateway may invoke the public services; nobody else may (no allUsers): the web app is
# public through the gateway only, like the API.
resource "google_cloud_run_v2_service_iam_member" "gateway_invokes_public" {
  for_each = local.public_functions

  project  = var.project_id
  location = var.region
  name     = module.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.gateway.email}"
}

# ---------------------------------------------------------------------------------------------
# API Gateway
# ---------------------------------------------------------------------------------------------

resource "google_api_gateway_api" "yds" {
  provider = google-beta

  project      = var.project_id
  api_id       = "${var.name_prefix}-api"
  display_name = "YDS"
  labels       = var.labels

  depends_on = [google_project_service.enabled]
}

resource "google_api_gateway_api_config" "yds" {
  provider = google-beta

  project              = var.project_id
  api                  = google_api_gateway_api.yds.api_id
  api_config_id_prefix = "${var.name_prefix}-"
  display_name         = "YDS public API"
  labels               = var.labels

  openapi_documents {
    document {
      path     = "openapi.yaml"
      contents = base64encode(local.openapi_spec)
    }
  }

  gateway_config {
    backend_config {
      google_service_account = google_service_account.gateway.email
    }
  }

  # A config in use by the gateway cannot be deleted: make the new one first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "google_api_gateway_gateway" "yds" {
  provider = google-beta

  project      = var.project_id
  region       = local.gateway_region
  gateway_id   = "${var.name_prefix}-gateway"
  api_config   = google_api_gateway_api_config.yds.id
  display_name = "YDS"
  labels       = var.labels
}

# The API's managed service must be enabled in the project for API keys restricted to it.
resource "google_project_service" "gateway_managed_service" {
  project            = var.project_id
  service            = google_api_gateway_api.yds.managed_service
  disable_on_destroy = false
}
