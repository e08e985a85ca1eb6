//! The metrics a stack records, into the recorder in force at each event.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tower::{ServiceBuilder, ServiceExt};
use tower_mail::{
    BoxError, CloseReason, CloseReport, Connection, Protocol, Reject, Session, Transport,
};

use super::MetricsLayer;

/// One metric's value: a counter's count, a gauge's level, a histogram's number of samples.
#[derive(Default)]
struct Value(Mutex<f64>);

impl Value {
    fn add(&self, by: f64) {
        *self.0.lock().unwrap() += by;
    }
}

impl CounterFn for Value {
    fn increment(&self, value: u64) {
        self.add(value as f64);
    }
    fn absolute(&self, value: u64) {
        *self.0.lock().unwrap() = value as f64;
    }
}

impl GaugeFn for Value {
    fn increment(&self, value: f64) {
        self.add(value);
    }
    fn decrement(&self, value: f64) {
        self.add(-value);
    }
    fn set(&self, value: f64) {
        *self.0.lock().unwrap() = value;
    }
}

impl HistogramFn for Value {
    fn record(&self, _: f64) {
        self.add(1.0);
    }
}

/// A recorder that keeps every metric by name and labels, and counts registrations.
#[derive(Default)]
struct Recording {
    registrations: AtomicUsize,
    values: Mutex<BTreeMap<String, Arc<Value>>>,
}

impl Recording {
    fn value(&self, key: &Key) -> Arc<Value> {
        self.registrations.fetch_add(1, Ordering::SeqCst);
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.values.lock().unwrap().entry(name).or_default().clone()
    }

    /// Every metric that has a value other than zero.
    fn snapshot(&self) -> BTreeMap<String, f64> {
        self.values
            .lock()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), *value.0.lock().unwrap()))
            .filter(|(_, value)| *value != 0.0)
            .collect()
    }
}

impl Recorder for Recording {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.value(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.value(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.value(key))
    }
}

fn connection(protocol: Protocol) -> Connection {
    let session = Arc::new(Session::new(
        protocol,
        "192.0.2.1:40000".parse().unwrap(),
        "127.0.0.1:143".parse().unwrap(),
    ));
    let (client, server) = tokio::io::duplex(64);
    drop(client);
    Connection::from_parts(session, Transport::new(server))
}

/// `accepted` sessions that log out and `refused` connections that a layer named `layer`
/// refuses, through one metrics layer.
async fn run(layer: &MetricsLayer, protocol: Protocol, accepted: usize, refused: usize) {
    let serve = ServiceBuilder::new()
        .layer(layer.clone())
        .service(tower::service_fn(|c: Connection| async move {
            let parts = c.into_parts().expect("the transport is there");
            Ok::<_, BoxError>(CloseReport::new(&parts.session, CloseReason::Logout))
        }));
    let refuse = ServiceBuilder::new()
        .layer(layer.clone())
        .service(tower::service_fn(|_: Connection| async {
            Err::<CloseReport, BoxError>(Box::new(Reject::new("no").with_layer("ip_block")))
        }));
    for _ in 0..accepted {
        serve.clone().oneshot(connection(protocol)).await.unwrap();
    }
    for _ in 0..refused {
        assert!(refuse.clone().oneshot(connection(protocol)).await.is_err());
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn names_and_labels() {
    let recording = Recording::default();
    let _guard = metrics::set_default_local_recorder(&recording);
    runtime().block_on(run(&MetricsLayer::new(), Protocol::Pop3, 3, 2));
    let expected: BTreeMap<String, f64> = [
        (
            "mail_connections_closed_total{protocol=pop3,reason=logout}",
            3.0,
        ),
        (
            "mail_connections_total{protocol=pop3,outcome=accepted}",
            3.0,
        ),
        (
            "mail_connections_total{protocol=pop3,outcome=rejected}",
            2.0,
        ),
        ("mail_rejections_total{protocol=pop3,layer=ip_block}", 2.0),
        ("mail_session_duration_seconds{protocol=pop3}", 3.0),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(recording.snapshot(), expected);
    // The gauge went up and down again.
    assert!(
        recording
            .values
            .lock()
            .unwrap()
            .contains_key("mail_connections_active{protocol=pop3}")
    );
}

#[test]
fn handles_are_resolved_once_per_thread_and_recorder() {
    let recording = Recording::default();
    let _guard = metrics::set_default_local_recorder(&recording);
    let layer = MetricsLayer::new();
    runtime().block_on(run(&layer, Protocol::Imap, 1, 1));
    let after_one = recording.registrations.load(Ordering::SeqCst);
    runtime().block_on(run(&layer, Protocol::Imap, 50, 50));
    assert_eq!(recording.registrations.load(Ordering::SeqCst), after_one);
    let snapshot = recording.snapshot();
    assert_eq!(
        snapshot["mail_connections_total{protocol=imap,outcome=accepted}"],
        51.0
    );
    assert_eq!(
        snapshot["mail_rejections_total{protocol=imap,layer=ip_block}"],
        51.0
    );
}

#[test]
fn each_event_goes_to_the_recorder_in_force() {
    // Two recorders alive at once, so at two addresses.
    let (first, second) = (Recording::default(), Recording::default());
    let layer = MetricsLayer::new();
    // No recorder at all: nothing to record into, nothing breaks.
    runtime().block_on(run(&layer, Protocol::Pop3, 2, 1));
    {
        let _guard = metrics::set_default_local_recorder(&first);
        runtime().block_on(run(&layer, Protocol::Pop3, 2, 1));
    }
    {
        let _guard = metrics::set_default_local_recorder(&second);
        runtime().block_on(run(&layer, Protocol::Pop3, 5, 0));
    }
    {
        let _guard = metrics::set_default_local_recorder(&first);
        runtime().block_on(run(&layer, Protocol::Pop3, 1, 0));
    }
    let accepted = "mail_connections_total{protocol=pop3,outcome=accepted}";
    assert_eq!(first.snapshot()[accepted], 3.0);
    assert_eq!(second.snapshot()[accepted], 5.0);
    assert_eq!(
        first.snapshot()["mail_connections_total{protocol=pop3,outcome=rejected}"],
        1.0
    );
    assert!(
        !second
            .snapshot()
            .contains_key("mail_connections_total{protocol=pop3,outcome=rejected}")
    );
}

#[test]
fn layer_names_without_bound_stay_correct() {
    let recording = Recording::default();
    let _guard = metrics::set_default_local_recorder(&recording);
    let layer = MetricsLayer::new();
    runtime().block_on(async {
        for i in 0..100 {
            let name = format!("layer{i}");
            let refuse = ServiceBuilder::new()
                .layer(layer.clone())
                .service(tower::service_fn(move |_: Connection| {
                    let reject = Reject::new("no").with_layer(name.clone());
                    async move { Err::<CloseReport, BoxError>(Box::new(reject)) }
                }));
            assert!(refuse.oneshot(connection(Protocol::Imap)).await.is_err());
        }
    });
    let snapshot = recording.snapshot();
    assert_eq!(
        snapshot["mail_connections_total{protocol=imap,outcome=rejected}"],
        100.0
    );
    for i in 0..100 {
        assert_eq!(
            snapshot[&format!("mail_rejections_total{{protocol=imap,layer=layer{i}}}")],
            1.0
        );
    }
}
