//! `--record FILE`: every accepted event appended to FILE as one NDJSON line.
//!
//! Handlers hand each request's lines to one writer task through a bounded channel (a full
//! channel slows the handlers down rather than growing memory); the writer flushes whenever
//! the channel runs empty, so the file is current while the receiver runs. If a write fails the
//! writer logs the error and stops: from then on sends fail, and the handler answers 500 rather
//! than accept an event it cannot record. Lines already queued when the write failed are lost.

use std::path::{Path, PathBuf};

use tokio::fs::OpenOptions;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ReceiveError;

/// Requests' worth of lines that may wait for the writer.
const RECORD_QUEUE_CAPACITY: usize = 4096;
/// Messages the writer takes off the channel at once.
const RECORD_BATCH: usize = 256;

enum RecordMessage {
    /// One request's lines.
    Lines(Vec<u8>),
    /// Flush and stop.
    Stop,
}

/// The handlers' side of the record file.
#[derive(Clone)]
pub(crate) struct Recorder {
    sender: mpsc::Sender<RecordMessage>,
}

/// The record file is no longer being written.
#[derive(Debug)]
pub(crate) struct RecordClosed;

impl Recorder {
    /// Opens `path` for appending (creating it) and starts the writer task.
    pub(crate) async fn open(path: &Path) -> Result<(Recorder, JoinHandle<()>), ReceiveError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| ReceiveError::RecordOpen {
                path: path.to_owned(),
                source,
            })?;
        let (sender, receiver) = mpsc::channel(RECORD_QUEUE_CAPACITY);
        let writer = tokio::spawn(write_lines(BufWriter::new(file), receiver, path.to_owned()));
        Ok((Recorder { sender }, writer))
    }

    /// Queues one request's lines.
    pub(crate) async fn append(&self, lines: Vec<u8>) -> Result<(), RecordClosed> {
        self.sender
            .send(RecordMessage::Lines(lines))
            .await
            .map_err(|_| RecordClosed)
    }

    /// Asks the writer to flush and stop after the lines queued so far.
    pub(crate) async fn stop(&self) {
        // A writer that already stopped (after a write error) has nothing left to flush.
        let _ = self.sender.send(RecordMessage::Stop).await;
    }
}

async fn write_lines(
    mut file: BufWriter<tokio::fs::File>,
    mut receiver: mpsc::Receiver<RecordMessage>,
    path: PathBuf,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    let result: std::io::Result<()> = async {
        'receive: while receiver.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            for message in batch.drain(..) {
                match message {
                    RecordMessage::Lines(lines) => file.write_all(&lines).await?,
                    RecordMessage::Stop => break 'receive,
                }
            }
            if receiver.is_empty() {
                file.flush().await?;
            }
        }
        file.flush().await
    }
    .await;
    if let Err(error) = result {
        tracing::error!(path = %path.display(), %error, "cannot write the record file; further events are answered 500");
    }
}
