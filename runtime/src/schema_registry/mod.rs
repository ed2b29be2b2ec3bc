//! The Confluent-compatible Schema Registry, as the services use it: the processor registers or
//! looks up each source's schema under `<topic>-value`; readers (SSE, `zoomstream tail`) fetch
//! writer schemas by id. Works with Confluent's registry, Apicurio (`/apis/ccompat/v7`) and
//! Karapace; basic auth or a bearer token, system CA roots or a CA file.

mod args;
mod client;
mod writer_schemas;

pub use args::RegistryArgs;
pub use client::{RegistryError, SchemaRegistry};
pub use writer_schemas::WriterSchemaCache;
