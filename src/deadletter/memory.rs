//! An in-memory store, for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{DeadLetterBlob, DeadLetterStore, StoreError, StoreFuture};

/// Keeps blobs in a map by path; can be told to fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    blobs: Mutex<BTreeMap<String, DeadLetterBlob>>,
    failure: Mutex<Option<StoreError>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every blob, by path.
    pub fn blobs(&self) -> BTreeMap<String, DeadLetterBlob> {
        self.blobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes every write fail with `failure` (or succeed again with `None`).
    pub fn fail_with(&self, failure: Option<StoreError>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = failure;
    }
}

impl DeadLetterStore for MemoryStore {
    fn put<'a>(&'a self, blob: &'a DeadLetterBlob) -> StoreFuture<'a> {
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let result = match failure {
            Some(error) => Err(error),
            None => {
                self.blobs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(blob.path.clone())
                    .or_insert_with(|| blob.clone());
                Ok(())
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn is_local(&self) -> bool {
        true
    }
}
