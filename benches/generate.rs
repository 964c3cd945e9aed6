//! Event generation and serialization, events/s: the limit against which the pipeline is measured.
//!
//! `cargo bench --bench generate`. Also compares our typed serde serialization with building a
//! `cloudevents::Event` and serializing that (the reason the event model is typed).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use twinroute::event::{Event, Serialized};
use twinroute::generator::{
    DEFAULT_MIX, DEFAULT_START_TIME, Generator, RateShape, WorkloadSettings,
};

const BATCH: u64 = 10_000;

fn settings() -> WorkloadSettings {
    WorkloadSettings {
        seed: 42,
        twins: 10_000,
        mix: DEFAULT_MIX,
        rate: RateShape::Constant {
            events_per_second: 1_000_000.0,
        },
        count: None,
        duration: None,
        start_time: None,
    }
}

/// A generator whose graph is already full, so the measured mix is the steady-state one.
fn warm_generator() -> Generator {
    let mut generator = Generator::new(
        &settings(),
        "contoso.api.wus2.digitaltwins.azure.net",
        DEFAULT_START_TIME,
    );
    generator.by_ref().take(100_000).for_each(drop);
    generator
}

fn to_cloudevents(event: &Event) -> cloudevents::Event {
    use cloudevents::{EventBuilder, EventBuilderV10};
    let data = serde_json::to_value(&event.data).expect("data serializes");
    let mut builder = EventBuilderV10::new()
        .id(event.id.as_str())
        .ty(event.kind.as_str())
        .source(&*event.source)
        .data(event.datacontenttype, data)
        .extension("traceparent", event.traceparent.as_str());
    if let Some(subject) = &event.subject {
        builder = builder.subject(&**subject);
    }
    if let Some(time) = &event.time {
        builder = builder.time(time.as_str());
    }
    if let Some(schema) = event.dataschema {
        builder = builder.data_with_schema(
            event.datacontenttype,
            schema,
            serde_json::to_value(&event.data).expect("data"),
        );
    }
    builder.build().expect("valid event")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("events");
    group.throughput(Throughput::Elements(BATCH));

    let mut generator = warm_generator();
    group.bench_function("generate", |b| {
        b.iter(|| {
            generator
                .by_ref()
                .take(BATCH as usize)
                .for_each(|s| drop(std::hint::black_box(s)))
        })
    });

    let mut generator = warm_generator();
    group.bench_function("generate+serialize", |b| {
        b.iter(|| {
            generator.by_ref().take(BATCH as usize).for_each(|s| {
                std::hint::black_box(Serialized::new(s.event).json().len());
            })
        })
    });

    let events: Vec<Event> = warm_generator()
        .take(BATCH as usize)
        .map(|s| s.event)
        .collect();
    group.bench_function("serialize/typed-serde", |b| {
        b.iter(|| {
            events
                .iter()
                .for_each(|e| drop(std::hint::black_box(e.to_json())))
        })
    });
    group.bench_function("serialize/cloudevents-sdk", |b| {
        b.iter_batched(
            || (),
            |()| {
                events.iter().for_each(|e| {
                    let event = to_cloudevents(e);
                    drop(std::hint::black_box(
                        serde_json::to_vec(&event).expect("serializes"),
                    ))
                })
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
