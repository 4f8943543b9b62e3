//! OpenAPI schemas for kubox: which fields the Kubernetes kinds declare, and the schema parts
//! of the `/openapi/v2` and `/openapi/v3` documents.
//!
//! kube-apiserver decodes built-in objects into Go structs, which drops undeclared fields and,
//! with `fieldValidation=Strict|Warn`, reports them (`unknown field "spec.foo"`). kubox keeps
//! objects as JSON, so it does the same with schemas:
//!
//! * [`Schemas::builtin`] holds the schema of every built-in kind kubox serves, from
//!   k8s-openapi 0.29 (Kubernetes 1.35) via its `schemars` feature. They are generated ahead of
//!   time into `assets/` by `src/bin/generate.rs`
//!   (`cargo run -p kubox-openapi --features generate --bin generate-schemas`), embedded in the
//!   binary, and decoded lazily on first use — so neither the build nor server start-up pays
//!   for schemars (see the `assets` module for the files); what the schema builder makes of
//!   them is packed ahead of time as well, so a start does not build it either.
//! * [`Structural`] is the walkable form of one schema; custom resources' `openAPIV3Schema`
//!   parse into the same type ([`Structural::for_custom_resource`]).
//! * [`prune`] drops undeclared fields from a JSON value; [`strict_errors`] lists what Go's strict
//!   decoder would report for a document, in its order and wording; [`apply_errors`] what
//!   server-side apply reports.
//! * [`Schemas::v3_components`] and [`Schemas::v2_definitions`] are the schema sections of the
//!   published OpenAPI documents (with `x-kubernetes-group-version-kind` on each kind and the
//!   patch-strategy extensions kubox's strategic-merge-patch table knows).
//! * [`published::PublishedSchema`] is what a CRD version adds to those documents (its kind
//!   and list kind, named and shaped as kube-apiserver publishes them, v3 and v2 forms).
//!
//! This crate knows schemas, not storage or HTTP.
#![warn(missing_docs)]

#[doc(hidden)]
pub mod assets;
mod builtin;
mod go_json;
mod ordered;
mod packed;
mod prune;
pub mod published;
mod shape;
mod structural;

pub use builtin::{Answer, Schemas};
pub use ordered::OrderedValue;
pub use prune::{
    apply_error_message, apply_errors, duplicate_fields, prune, strict_decoding_error,
    strict_errors, type_errors, unknown_field,
};
pub use shape::{decodes_plainly, StringFormat};
pub use structural::{Structural, Type};

// Custom resource schemas: validation, defaulting, CEL rules (see `crd_schema`).
mod cel;
mod cel_check;
mod cel_lib;
mod cel_macros;
pub use cel::{CostBudget, Expression};
pub mod crd_schema;
mod defaults;
mod formats;
mod schema_node;
mod validate;
