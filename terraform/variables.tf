# ---------------------------------------------------------------------------------------------
# Project and placement
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project id to deploy into (billing enabled)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project id: 6-30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of Cloud Run, Cloud Tasks and (by default) the bucket and the gateway, e.g. europe-west1."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like europe-west1 or us-central1."
  }
}

variable "gateway_region" {
  description = "Region of the API Gateway gateway; null means var.region. API Gateway runs in fewer regions than Cloud Run (e.g. europe-west1, europe-west2, us-central1, us-east1, asia-northeast1)."
  type        = string
  default     = null

  validation {
    condition     = var.gateway_region == null || can(regex("^[a-z]+-[a-z]+[0-9]+$", var.gateway_region))
    error_message = "gateway_region must be null or look like europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (services, service accounts, queue, API)."
  type        = string
  default     = "yds"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}$", var.name_prefix))
    error_message = "name_prefix must be 1-15 lowercase letters, digits and hyphens, starting with a letter (service account ids are limited to 30 characters)."
  }
}

variable "labels" {
  description = "Labels added to the services and the bucket."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services from `terraform destroy` (set false to tear a test deployment down)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Images: one per function (build them with `cargo xtask image` when it lands; see README.md)
# ---------------------------------------------------------------------------------------------

variable "import_trigger_image" {
  description = "Container image of import-trigger (POST /datasets/import), e.g. europe-west1-docker.pkg.dev/PROJECT/yds/import-trigger@sha256:..."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.import_trigger_image))
    error_message = "import_trigger_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/import-trigger:TAG."
  }
}

variable "lifecycle_image" {
  description = "Container image of lifecycle (PATCH and DELETE /datasets/{id})."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.lifecycle_image))
    error_message = "lifecycle_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/lifecycle:TAG."
  }
}

variable "uploads_image" {
  description = "Container image of uploads (POST /uploads, PUT /uploads/{upload_id})."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.uploads_image))
    error_message = "uploads_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/uploads:TAG."
  }
}

variable "list_image" {
  description = "Container image of list (GET /datasets, GET /datasets/{id})."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.list_image))
    error_message = "list_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/list:TAG."
  }
}

variable "images_image" {
  description = "Container image of images (GET /datasets/{id}/images)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.images_image))
    error_message = "images_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/images:TAG."
  }
}

variable "status_image" {
  description = "Container image of status (GET /datasets/import/{job_id}/status)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.status_image))
    error_message = "status_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/status:TAG."
  }
}

variable "web_image" {
  description = "Container image of web (the web app and API reference: GET /, /ui/**, /docs)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.web_image))
    error_message = "web_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/web:TAG."
  }
}

variable "process_chunk_image" {
  description = "Container image of process-chunk (the Cloud Tasks handler; not public)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^[:space:]]+$", var.process_chunk_image))
    error_message = "process_chunk_image must be a registry image reference such as REGION-docker.pkg.dev/PROJECT/REPO/process-chunk:TAG."
  }
}

# ---------------------------------------------------------------------------------------------
# Sizing. The defaults come from the benchmarks (README.md, "Benchmarks"): the four API
# functions are I/O-bound MongoDB reads/writes, so one vCPU serves many requests at once within
# 256Mi (web, which serves files from memory, shares their sizing); process-chunk decodes image
# headers and copies objects, one chunk per instance.
# ---------------------------------------------------------------------------------------------

variable "api_cpu" {
  description = "vCPU of one instance of import-trigger, list, images, status and web (from the benchmarks)."
  type        = string
  default     = "1"
}

variable "api_memory" {
  description = "Memory of one instance of import-trigger, list, images, status and web (from the benchmarks)."
  type        = string
  default     = "256Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.api_memory))
    error_message = "api_memory must be like 256Mi or 1Gi."
  }
}

variable "api_concurrency" {
  description = "Concurrent requests per instance of the API functions (from the benchmarks)."
  type        = number
  default     = 80

  validation {
    condition     = var.api_concurrency >= 1 && var.api_concurrency <= 1000
    error_message = "api_concurrency must be between 1 and 1000."
  }
}

variable "api_min_instances" {
  description = "Warm instances of each API function (0 scales to zero; 1 removes cold starts for a fee)."
  type        = number
  default     = 0

  validation {
    condition     = var.api_min_instances >= 0 && floor(var.api_min_instances) == var.api_min_instances
    error_message = "api_min_instances must be a whole number >= 0."
  }
}

variable "api_max_instances" {
  description = "Instance cap of each API function; bounds both cost and the MongoDB connections (max_instances x pool size)."
  type        = number
  default     = 10

  validation {
    condition     = var.api_max_instances >= 1 && floor(var.api_max_instances) == var.api_max_instances
    error_message = "api_max_instances must be a whole number >= 1."
  }
}

variable "api_timeout_seconds" {
  description = "Request timeout of the API functions."
  type        = number
  default     = 60

  validation {
    condition     = var.api_timeout_seconds >= 1 && var.api_timeout_seconds <= 3600
    error_message = "api_timeout_seconds must be between 1 and 3600."
  }
}

variable "process_chunk_cpu" {
  description = "vCPU of one process-chunk instance (from the benchmarks)."
  type        = string
  default     = "1"
}

variable "process_chunk_memory" {
  description = "Memory of one process-chunk instance (from the benchmarks). Cloud Run's /tmp is in memory and counts here."
  type        = string
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.process_chunk_memory))
    error_message = "process_chunk_memory must be like 512Mi or 2Gi."
  }
}

variable "process_chunk_concurrency" {
  description = "Tasks one process-chunk instance handles at once: 1, one chunk per instance (from the benchmarks)."
  type        = number
  default     = 1

  validation {
    condition     = var.process_chunk_concurrency >= 1 && var.process_chunk_concurrency <= 1000
    error_message = "process_chunk_concurrency must be between 1 and 1000."
  }
}

variable "process_chunk_min_instances" {
  description = "Warm process-chunk instances (0 scales to zero between imports)."
  type        = number
  default     = 0

  validation {
    condition     = var.process_chunk_min_instances >= 0 && floor(var.process_chunk_min_instances) == var.process_chunk_min_instances
    error_message = "process_chunk_min_instances must be a whole number >= 0."
  }
}

variable "process_chunk_max_instances" {
  description = "Instance cap of process-chunk: the import parallelism. Must be at least queue_max_concurrent_dispatches / process_chunk_concurrency."
  type        = number
  default     = 20

  validation {
    condition     = var.process_chunk_max_instances >= 1 && floor(var.process_chunk_max_instances) == var.process_chunk_max_instances
    error_message = "process_chunk_max_instances must be a whole number >= 1."
  }
}

variable "process_chunk_timeout_seconds" {
  description = "Request timeout of process-chunk: the longest one plan or chunk task may run. Keep it >= the tasks' dispatch deadline."
  type        = number
  default     = 900

  validation {
    condition     = var.process_chunk_timeout_seconds >= 15 && var.process_chunk_timeout_seconds <= 3600
    error_message = "process_chunk_timeout_seconds must be between 15 and 3600."
  }
}

# ---------------------------------------------------------------------------------------------
# Application settings (environment of the functions; see shared/src/config.rs)
# ---------------------------------------------------------------------------------------------

variable "db_name" {
  description = "MongoDB database name (YDS_DB_NAME)."
  type        = string
  default     = "yds"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,63}$", var.db_name))
    error_message = "db_name must be 1-63 letters, digits, '_' or '-'."
  }
}

variable "chunk_size" {
  description = "Files per chunk when an import request names none (YDS_CHUNK_SIZE)."
  type        = number
  default     = 500

  validation {
    condition     = var.chunk_size >= 1 && var.chunk_size <= 10000 && floor(var.chunk_size) == var.chunk_size
    error_message = "chunk_size must be a whole number between 1 and 10000 (the API's bounds)."
  }
}

variable "fetch_timeout_seconds" {
  description = "A source download that stalls this long is abandoned (YDS_FETCH_TIMEOUT_SECS)."
  type        = number
  default     = 60

  validation {
    condition     = var.fetch_timeout_seconds >= 1 && floor(var.fetch_timeout_seconds) == var.fetch_timeout_seconds
    error_message = "fetch_timeout_seconds must be a whole number >= 1."
  }
}

variable "rust_log" {
  description = "Log filter of every function (RUST_LOG), e.g. info or yds=debug,info."
  type        = string
  default     = "info"
}

variable "mongodb_secret_id" {
  description = "Secret Manager secret holding the MongoDB connection string (its value is added by the operator, never by Terraform)."
  type        = string
  default     = "yds-mongodb-uri"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.mongodb_secret_id))
    error_message = "mongodb_secret_id must be 1-255 letters, digits, '_' or '-'."
  }
}

variable "api_keys_secret_id" {
  description = "Secret Manager secret holding YDS_API_KEYS (`key` or `key:tenant`, comma-separated); read by the four public functions."
  type        = string
  default     = "yds-api-keys"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.api_keys_secret_id))
    error_message = "api_keys_secret_id must be 1-255 letters, digits, '_' or '-'."
  }
}

# ---------------------------------------------------------------------------------------------
# Bucket
# ---------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Bucket holding dataset files and import staging; null means \"<project_id>-<name_prefix>-data\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be null or a valid bucket name (3-63 lowercase letters, digits, '-', '_', '.')."
  }
}

variable "bucket_location" {
  description = "Bucket location; null means var.region (keep it next to process-chunk: no egress charges)."
  type        = string
  default     = null
}

variable "temp_retention_days" {
  description = "Age after which staged import files under temp/ are deleted (a finished import no longer needs them)."
  type        = number
  default     = 3

  validation {
    condition     = var.temp_retention_days >= 1 && floor(var.temp_retention_days) == var.temp_retention_days
    error_message = "temp_retention_days must be a whole number >= 1."
  }
}

variable "upload_max_bytes" {
  description = "The largest upload POST /uploads accepts (YDS_UPLOAD_MAX_BYTES); a larger size_bytes is refused with 413. Default 100 GiB."
  type        = number
  default     = 107374182400

  validation {
    condition     = var.upload_max_bytes >= 1 && floor(var.upload_max_bytes) == var.upload_max_bytes
    error_message = "upload_max_bytes must be a whole number of bytes >= 1."
  }
}

variable "soft_delete_retention_seconds" {
  description = "Soft-delete retention of the bucket: 0 turns it off (the default: staging churn would be billed for nothing), otherwise 604800 (7 days) to 7776000 (90 days)."
  type        = number
  default     = 0

  validation {
    condition     = var.soft_delete_retention_seconds == 0 || (var.soft_delete_retention_seconds >= 604800 && var.soft_delete_retention_seconds <= 7776000)
    error_message = "soft_delete_retention_seconds must be 0 or between 604800 and 7776000."
  }
}

# ---------------------------------------------------------------------------------------------
# Cloud Tasks queue (import plans and chunks, delivered to process-chunk)
# ---------------------------------------------------------------------------------------------

variable "queue_name" {
  description = "Cloud Tasks queue id; null means \"<name_prefix>-import\". A deleted queue's name cannot be reused for about 7 days."
  type        = string
  default     = null

  validation {
    condition     = var.queue_name == null || can(regex("^[A-Za-z0-9-]{1,100}$", var.queue_name))
    error_message = "queue_name must be null or 1-100 letters, digits and hyphens."
  }
}

variable "queue_max_dispatches_per_second" {
  description = "Rate at which the queue starts tasks."
  type        = number
  default     = 50

  validation {
    condition     = var.queue_max_dispatches_per_second > 0 && var.queue_max_dispatches_per_second <= 500
    error_message = "queue_max_dispatches_per_second must be in (0, 500]."
  }
}

variable "queue_max_concurrent_dispatches" {
  description = "Tasks in flight at once; at most process_chunk_max_instances x process_chunk_concurrency, else deliveries get 429s."
  type        = number
  default     = 20

  validation {
    condition     = var.queue_max_concurrent_dispatches >= 1 && var.queue_max_concurrent_dispatches <= 5000 && floor(var.queue_max_concurrent_dispatches) == var.queue_max_concurrent_dispatches
    error_message = "queue_max_concurrent_dispatches must be a whole number between 1 and 5000."
  }
}

variable "task_max_attempts" {
  description = "Deliveries of one task before Cloud Tasks gives up; process-chunk gets the same number (YDS_TASK_MAX_ATTEMPTS) and records a dead letter on the last."
  type        = number
  default     = 8

  validation {
    condition     = var.task_max_attempts >= 2 && floor(var.task_max_attempts) == var.task_max_attempts
    error_message = "task_max_attempts must be a whole number >= 2 (the last attempt is the one that records the failure)."
  }
}

variable "task_min_backoff_seconds" {
  description = "Wait before the first retry of a failed task."
  type        = number
  default     = 5

  validation {
    condition     = var.task_min_backoff_seconds >= 0
    error_message = "task_min_backoff_seconds must be >= 0."
  }
}

variable "task_max_backoff_seconds" {
  description = "Longest wait between two retries."
  type        = number
  default     = 300

  validation {
    condition     = var.task_max_backoff_seconds >= 1
    error_message = "task_max_backoff_seconds must be >= 1."
  }
}

variable "task_max_doublings" {
  description = "Times the retry interval doubles before it grows linearly."
  type        = number
  default     = 5

  validation {
    condition     = var.task_max_doublings >= 0 && floor(var.task_max_doublings) == var.task_max_doublings
    error_message = "task_max_doublings must be a whole number >= 0."
  }
}

variable "queue_log_sampling_ratio" {
  description = "Fraction of task operations logged to Cloud Logging (0 to 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.queue_log_sampling_ratio >= 0 && var.queue_log_sampling_ratio <= 1
    error_message = "queue_log_sampling_ratio must be between 0 and 1."
  }
}

variable "mongodb_secret_version" {
  description = "Version of the MongoDB secret the functions read: \"latest\" (resolved when an instance starts) or a number, to roll a new revision on purpose."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[0-9]+)$", var.mongodb_secret_version))
    error_message = "mongodb_secret_version must be \"latest\" or a version number."
  }
}

variable "cursor_secret_id" {
  description = "Secret Manager secret holding YDS_CURSOR_SECRET, the key that signs pagination cursors; read by the four public functions."
  type        = string
  default     = "yds-cursor-key"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.cursor_secret_id))
    error_message = "cursor_secret_id must be 1-255 letters, digits, '_' or '-'."
  }
}

variable "cursor_secret_version" {
  description = "Version of the cursor key secret: \"latest\" or a number (a new key invalidates the cursors clients hold)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[0-9]+)$", var.cursor_secret_version))
    error_message = "cursor_secret_version must be \"latest\" or a version number."
  }
}

variable "url_signing_secret_id" {
  description = "Secret Manager secret holding YDS_URL_SIGNING_KEY, the key that signs the expiring image file and thumbnail URLs; read by the images function only."
  type        = string
  default     = "yds-url-signing-key"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.url_signing_secret_id))
    error_message = "url_signing_secret_id must be 1-255 letters, digits, '_' or '-'."
  }
}

variable "url_signing_secret_version" {
  description = "Version of the URL signing key secret: \"latest\" or a number (a new key invalidates the image URLs clients hold; they last two hours at most)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[0-9]+)$", var.url_signing_secret_version))
    error_message = "url_signing_secret_version must be \"latest\" or a version number."
  }
}

variable "api_keys_secret_version" {
  description = "Version of the API keys secret the public functions read: \"latest\" or a number (bump it after adding a key so every instance restarts with it)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[0-9]+)$", var.api_keys_secret_version))
    error_message = "api_keys_secret_version must be \"latest\" or a version number."
  }
}
