//! Writer schemas by registry id, for readers of Confluent-framed records: fetched once per id
//! (a registry never changes what an id means) and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apache_avro::Schema;
use zoomstream_schemas::avro::RegistrySchemas;

use super::SchemaRegistry;

/// A [`RegistrySchemas`] over a registry client, caching every schema it fetched. Lookups
/// block (HTTP): call from blocking contexts.
#[derive(Debug)]
pub struct WriterSchemaCache {
    registry: SchemaRegistry,
    schemas: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl WriterSchemaCache {
    pub fn new(registry: SchemaRegistry) -> WriterSchemaCache {
        WriterSchemaCache {
            registry,
            schemas: Mutex::new(HashMap::new()),
        }
    }
}

impl RegistrySchemas for WriterSchemaCache {
    fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, String> {
        if let Some(schema) = self
            .schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(Arc::clone(schema));
        }
        let text = self
            .registry
            .schema_text_by_id(id)
            .map_err(|e| e.to_string())?;
        let schema = Arc::new(
            Schema::parse_str(&text)
                .map_err(|e| format!("the registry's schema {id} does not parse: {e}"))?,
        );
        self.schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, Arc::clone(&schema));
        Ok(schema)
    }
}
