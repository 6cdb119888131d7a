variable "project_id" {
  description = "Project the service and its service account live in."
  type        = string
}

variable "region" {
  description = "Cloud Run region."
  type        = string
}

variable "name" {
  description = "Cloud Run service name (also the base of the service account id); lowercase letters, digits and hyphens."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,47}[a-z0-9]$", var.name))
    error_message = "name must be 2-49 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "function" {
  description = "The YDS function this service runs (import-trigger, uploads, lifecycle, list, images, status, process-chunk or web); used in labels and descriptions."
  type        = string

  validation {
    condition     = contains(["import-trigger", "uploads", "lifecycle", "list", "images", "status", "process-chunk", "web"], var.function)
    error_message = "function must be one of import-trigger, uploads, lifecycle, list, images, status, process-chunk, web."
  }
}

variable "image" {
  description = "Container image of the function (Artifact Registry path, ideally pinned by digest)."
  type        = string
}

variable "ingress" {
  description = "INGRESS_TRAFFIC_ALL for services behind API Gateway, INGRESS_TRAFFIC_INTERNAL_ONLY for the task handler."
  type        = string

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.ingress)
    error_message = "ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "cpu" {
  description = "vCPU limit of one instance, as Cloud Run spells it (\"1\", \"2\", \"1000m\")."
  type        = string
}

variable "memory" {
  description = "Memory limit of one instance (\"256Mi\", \"512Mi\", \"1Gi\")."
  type        = string
}

variable "concurrency" {
  description = "Requests one instance serves at once."
  type        = number

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number between 1 and 1000."
  }
}

variable "min_instances" {
  description = "Instances kept warm (0 scales to zero)."
  type        = number

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number >= 0."
  }
}

variable "max_instances" {
  description = "Upper bound of instances."
  type        = number

  validation {
    condition     = var.max_instances >= 1 && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number >= 1."
  }
}

variable "timeout_seconds" {
  description = "Longest a request may take before Cloud Run answers 504."
  type        = number

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be between 1 and 3600."
  }
}

variable "env" {
  description = "Plain environment variables, name => value. Names must be ones the binaries read (shared/src/config.rs)."
  type        = map(string)
  default     = {}
}

variable "secret_env" {
  description = "Environment variables taken from Secret Manager, name => { secret = secret id, version = \"latest\" or a number }. The module grants its service account secretAccessor on each of these secrets, and only these."
  type = map(object({
    secret  = string
    version = string
  }))
  default = {}
}

variable "labels" {
  description = "Labels added to the service."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Refuse `terraform destroy` of the service."
  type        = bool
  default     = true
}
