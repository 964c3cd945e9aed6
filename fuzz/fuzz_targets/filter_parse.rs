//! Parsing never panics, and whatever parses prints to text that parses to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use twinroute::filter::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(source) else {
        return;
    };
    let printed = filter.to_string();
    let again = Filter::parse(&printed)
        .unwrap_or_else(|e| panic!("{printed:?} (printed from {source:?}) failed to parse: {e}"));
    assert_eq!(again, filter, "{printed:?} parsed to another tree");
    assert_eq!(again.to_string(), printed, "printing is not stable");
});
