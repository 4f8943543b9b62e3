//! Kubernetes object machinery that knows neither HTTP nor storage: label and field selectors,
//! strategic merge patch, the validation of names, labels and annotations, and the transcoding
//! of Kubernetes protobuf request bodies to JSON.
#![warn(missing_docs)]
pub mod builtin;
pub mod fieldpath;
pub mod fields;
pub mod json_text;
pub mod jsonpath;
pub mod labels;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod validation;

pub mod patch_meta;
pub mod strategic;
pub mod yaml;
