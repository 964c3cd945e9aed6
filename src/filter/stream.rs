//! `twinroute filter`'s loop: one answer per NDJSON line of structured CloudEvents.
//!
//! Each non-blank line gets `true`, `false` or `error` on the output, in order. A line that is
//! not a structured CloudEvent, or not UTF-8, is one bad line, not the end of the input: its
//! reason goes to the diagnostics as `NAME: line N: …` and the next line is read.

use std::io::{self, BufRead, Write};

use super::{Filter, JsonEvent};

/// What [`answer_lines`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounts {
    /// Lines answered `true`.
    pub matched: u64,
    /// Lines answered `false`.
    pub unmatched: u64,
    /// Lines answered `error`: not UTF-8, or not a structured CloudEvent.
    pub bad: u64,
}

/// Why [`answer_lines`] stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The input could not be read.
    #[error("reading {name}: {source}")]
    Read {
        /// The input's name (a path, or `stdin`).
        name: String,
        /// The I/O error.
        source: io::Error,
    },
    /// An answer could not be written, after `written` answers were.
    #[error("writing answers failed after {written} lines: {source}")]
    Write {
        /// Answers written before the failure.
        written: u64,
        /// The I/O error (a closed pipe is [`io::ErrorKind::BrokenPipe`]).
        source: io::Error,
    },
}

/// Answers every line of `input` (called `name` in diagnostics) on `out`, and reports each bad
/// line on `diagnostics`. Flushes `out` at the end.
pub fn answer_lines(
    filter: &Filter,
    name: &str,
    mut input: impl BufRead,
    mut out: impl Write,
    mut diagnostics: impl Write,
) -> Result<LineCounts, StreamError> {
    let mut counts = LineCounts::default();
    let mut written = 0u64;
    let mut bytes = Vec::new();
    for number in 1u64.. {
        // Lines as bytes: a line that is not UTF-8 is one bad line, not the end of the input.
        bytes.clear();
        match input.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(source) => {
                return Err(StreamError::Read {
                    name: name.to_owned(),
                    source,
                });
            }
        }
        let answer = match std::str::from_utf8(&bytes) {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => match JsonEvent::from_json(line.trim_end_matches(['\n', '\r'])) {
                Ok(event) if filter.matches(&event) => {
                    counts.matched += 1;
                    "true"
                }
                Ok(_) => {
                    counts.unmatched += 1;
                    "false"
                }
                Err(error) => {
                    // Diagnostics are best effort: a closed stderr must not stop the answers.
                    let _ = writeln!(
                        diagnostics,
                        "{name}: line {number}: not a structured CloudEvent: {error}"
                    );
                    counts.bad += 1;
                    "error"
                }
            },
            Err(error) => {
                let _ = writeln!(
                    diagnostics,
                    "{name}: line {number}: not valid UTF-8: {error}"
                );
                counts.bad += 1;
                "error"
            }
        };
        writeln!(out, "{answer}").map_err(|source| StreamError::Write { written, source })?;
        written += 1;
    }
    out.flush()
        .map_err(|source| StreamError::Write { written, source })?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = r#"{"specversion":"1.0","id":"1","type":"Microsoft.DigitalTwins.Twin.Create","source":"x.api.wus2.digitaltwins.azure.net","subject":"t1","data":{"$metadata":{"$model":"dtmi:a;1"}}}"#;
    const DELETE: &str = r#"{"specversion":"1.0","id":"2","type":"Microsoft.DigitalTwins.Twin.Delete","source":"x.api.wus2.digitaltwins.azure.net","subject":"t1","data":{}}"#;

    fn answer(filter: &str, input: &[u8]) -> (Result<LineCounts, StreamError>, String, String) {
        let filter = Filter::parse(filter).unwrap();
        let (mut out, mut diagnostics) = (Vec::new(), Vec::new());
        let result = answer_lines(&filter, "events.ndjson", input, &mut out, &mut diagnostics);
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
        (result, text(out), text(diagnostics))
    }

    #[test]
    fn each_line_gets_its_answer_in_order_and_blank_lines_none() {
        let input = format!("{CREATE}\n\n{DELETE}\r\n  \n{CREATE}");
        let (result, out, diagnostics) = answer(
            "type = 'Microsoft.DigitalTwins.Twin.Create'",
            input.as_bytes(),
        );
        assert_eq!(out, "true\nfalse\ntrue\n");
        assert_eq!(diagnostics, "");
        let counts = result.unwrap();
        assert_eq!((counts.matched, counts.unmatched, counts.bad), (2, 1, 0));
    }

    #[test]
    fn a_bad_line_is_one_error_naming_its_line_and_the_rest_are_read() {
        let mut input = format!("{CREATE}\nnot json\n").into_bytes();
        input.extend_from_slice(b"\xff\xfe\n");
        input.extend_from_slice(DELETE.as_bytes());
        let (result, out, diagnostics) = answer("true", &input);
        assert_eq!(out, "true\nerror\nerror\ntrue\n");
        let lines: Vec<&str> = diagnostics.lines().collect();
        assert_eq!(lines.len(), 2, "{diagnostics}");
        assert!(
            lines[0].starts_with("events.ndjson: line 2: not a structured CloudEvent: "),
            "{diagnostics}"
        );
        assert!(
            lines[1].starts_with("events.ndjson: line 3: not valid UTF-8: "),
            "{diagnostics}"
        );
        assert_eq!(result.unwrap().bad, 2);
    }

    /// A writer that takes `room` lines, then fails as a closed pipe does.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.room -= buf.iter().filter(|b| **b == b'\n').count();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_output_stops_the_loop_saying_how_many_answers_went_out() {
        let filter = Filter::parse("true").unwrap();
        let input = format!("{CREATE}\n{CREATE}\n{CREATE}\n");
        let error = answer_lines(
            &filter,
            "stdin",
            input.as_bytes(),
            ClosedAfter { room: 2 },
            io::sink(),
        )
        .unwrap_err();
        match error {
            StreamError::Write { written, source } => {
                assert_eq!(written, 2);
                assert_eq!(source.kind(), io::ErrorKind::BrokenPipe);
            }
            other => panic!("expected a write error, got {other:?}"),
        }
    }

    /// A reader whose every read fails.
    struct Unreadable;

    impl io::Read for Unreadable {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn an_unreadable_input_is_an_error_naming_it() {
        let filter = Filter::parse("true").unwrap();
        let error = answer_lines(
            &filter,
            "events.ndjson",
            io::BufReader::new(Unreadable),
            io::sink(),
            io::sink(),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "reading events.ndjson: disk on fire");
    }
}
