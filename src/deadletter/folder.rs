//! A local folder standing in for the blob container: `<folder>/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/<id>.json`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{DeadLetterBlob, DeadLetterStore, StoreError, StoreFuture};

/// Writes each blob as a file, atomically (temp file + rename) and idempotently (an existing
/// file is left alone: the same event id at the same endpoint has the same bytes).
#[derive(Debug)]
pub struct FolderStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

impl FolderStore {
    /// A store writing under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderStore {
            root: root.into(),
            temp_counter: AtomicU64::new(0),
        }
    }

    /// The folder standing in for the container.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write(&self, blob: &DeadLetterBlob) -> Result<(), StoreError> {
        let path = self.root.join(&blob.path);
        if path.exists() {
            return Ok(());
        }
        let folder = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(folder).map_err(|e| classify(folder, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = folder.join(format!(
            ".{name}.{}.tmp",
            self.temp_counter.fetch_add(1, Relaxed)
        ));
        let result = std::fs::File::create(&temp)
            .and_then(|mut file| file.write_all(&blob.body).and_then(|()| file.sync_data()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temp);
            return Err(classify(&path, error));
        }
        Ok(())
    }
}

fn classify(path: &Path, error: std::io::Error) -> StoreError {
    use std::io::ErrorKind as K;
    let message = format!("{}: {error}", path.display());
    match error.kind() {
        K::PermissionDenied | K::ReadOnlyFilesystem | K::NotADirectory | K::InvalidInput => {
            StoreError::Permanent(message)
        }
        _ => StoreError::Transient(message),
    }
}

impl DeadLetterStore for FolderStore {
    fn put<'a>(&'a self, blob: &'a DeadLetterBlob) -> StoreFuture<'a> {
        // Small local writes, done inline: no spawn_blocking, so virtual time does not advance
        // while a file is written.
        let result = self.write(blob);
        Box::pin(std::future::ready(result))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn is_local(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::clock::Timestamp;
    use crate::deadletter::{DeadLetterMetadata, blob_path};

    fn blob(body: &'static str) -> DeadLetterBlob {
        let at = Timestamp::parse_rfc3339("2026-02-03T04:05:06Z").unwrap();
        DeadLetterBlob {
            path: blob_path("hub-1", at, "event-1"),
            body: Bytes::from_static(body.as_bytes()),
            metadata: DeadLetterMetadata {
                reason: "MaxDeliveryAttemptsExceeded",
                delivery_attempts: 3,
                last_delivery_outcome: "Busy",
                last_http_status_code: Some(503),
                publish_time: at,
                last_delivery_attempt_time: Some(at),
            },
        }
    }

    #[tokio::test]
    async fn writes_are_atomic_and_a_second_write_of_the_same_event_is_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::new(dir.path());
        store.put(&blob("{\"first\":1}")).await.unwrap();
        store.put(&blob("{\"second\":2}")).await.unwrap();
        let folder = dir.path().join("hub-1/2026/02/03/04");
        let names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["event-1.json"], "one file, no temp files left");
        assert_eq!(
            std::fs::read(folder.join("event-1.json")).unwrap(),
            b"{\"first\":1}"
        );
    }
}
