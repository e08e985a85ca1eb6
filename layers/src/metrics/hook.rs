use std::borrow::Cow;
use std::cell::RefCell;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use tower_mail::{
    CloseReason, CloseReport, Protocol, Reject, Session, SessionEvent, SessionObserver,
};

use crate::on_close::CloseHook;

/// Counts a connection as accepted when its session starts.
#[derive(Debug)]
pub(super) struct StartObserver;

impl SessionObserver for StartObserver {
    fn on_event(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject> {
        if let SessionEvent::Started = event {
            with_handles(session.protocol(), |metrics| {
                metrics.accepted().increment(1);
                metrics.active().increment(1.0);
            });
        }
        Ok(())
    }
}

/// Records a connection's end: a close for sessions that started, a refusal otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RecordClose;

impl CloseHook for RecordClose {
    fn on_close(&self, session: &Session, report: &CloseReport) {
        // `has_started` pairs exactly with the Started event: both happen in
        // `Connection::into_parts`, which notifies every observer.
        let started = session.has_started();
        with_handles(session.protocol(), |metrics| {
            if started {
                metrics.active().decrement(1.0);
                metrics.count_close(report.reason.as_str());
                metrics.duration().record(report.duration.as_secs_f64());
                return;
            }
            let layer = match &report.reason {
                CloseReason::Rejected(reject) => Value::Dynamic(reject.layer()),
                other => Value::Static(other.as_str()),
            };
            metrics.rejected().increment(1);
            metrics.count_rejection(layer);
        });
    }
}

const CONNECTIONS: &str = "mail_connections_total";
const REJECTIONS: &str = "mail_rejections_total";
const ACTIVE: &str = "mail_connections_active";
const CLOSED: &str = "mail_connections_closed_total";
const DURATION: &str = "mail_session_duration_seconds";

/// What `counter!` and its kin pass from this module.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A label value: most are known at compile time, a refusing layer's name may not be.
#[derive(Clone, Copy)]
enum Value<'a> {
    Static(&'static str),
    Dynamic(&'a str),
}

impl Value<'_> {
    fn as_str(&self) -> &str {
        match self {
            Value::Static(value) | Value::Dynamic(value) => value,
        }
    }

    fn shared(&self) -> Cow<'static, str> {
        match *self {
            Value::Static(value) => Cow::Borrowed(value),
            Value::Dynamic(value) => Cow::Owned(value.to_owned()),
        }
    }
}

/// Metric handles of one thread, for one recorder.
///
/// `counter!` and its kin resolve their handle on every call: they build the key (a label
/// vector on the heap), the recorder copies it and looks it up in its registry under a lock.
/// With the Prometheus recorder that was about 2 µs of every connection's five metrics. Here
/// a thread resolves each handle once and then only uses it: a connection costs one
/// thread-local access, an array index per protocol and a few atomic operations (and the
/// histogram's sample). Handles are kept per thread, so no lock guards them, and per recorder:
/// the recorder in force at each event is still the one recorded into (`with_recorder`), and
/// when it is another one than the handles came from (a global recorder installed since, a
/// local one), they are resolved from it afresh.
///
/// Recorders are told apart by address. A recorder without size (the no-op one) has no
/// address of its own, so its handles are not kept; one that takes the place of another at the
/// same address on the same thread (a local recorder on the stack, made anew in a loop) would
/// be taken for it, so such a recorder needs its own layer on a new thread (what tests get).
struct Handles {
    recorder: usize,
    /// By protocol: IMAP, POP3.
    protocols: [ProtocolHandles; 2],
}

/// The handles of one protocol's metrics, each resolved on its first use.
struct ProtocolHandles {
    accepted: Option<Counter>,
    rejected: Option<Counter>,
    active: Option<Gauge>,
    duration: Option<Histogram>,
    /// By close reason. Reasons are `&'static str` labels from one `match`, so they are told
    /// apart by address: cheaper than comparing text, and a label that came from elsewhere with
    /// the same text only costs one more entry for the same metric.
    closed: Vec<(&'static str, Counter)>,
    /// By refusing layer, whose names may be made up per refusal: bounded.
    rejections: Vec<(Cow<'static, str>, Counter)>,
}

/// More kept handles of one kind than this on one thread means label values without bound
/// (layer names made up per refusal, say): the others are resolved per use.
const MOST_HANDLES: usize = 64;

impl ProtocolHandles {
    const fn new() -> ProtocolHandles {
        ProtocolHandles {
            accepted: None,
            rejected: None,
            active: None,
            duration: None,
            closed: Vec::new(),
            rejections: Vec::new(),
        }
    }
}

impl Handles {
    const fn new() -> Handles {
        Handles {
            recorder: 0,
            protocols: [ProtocolHandles::new(), ProtocolHandles::new()],
        }
    }

    /// Make these the handles of `recorder`, dropping those of another.
    fn of(&mut self, recorder: usize) -> &mut Handles {
        if self.recorder != recorder {
            *self = Handles::new();
            self.recorder = recorder;
        }
        self
    }
}

thread_local! {
    static HANDLES: RefCell<Handles> = const { RefCell::new(Handles::new()) };
}

/// One protocol's metrics in the recorder in force, resolving each handle on first use.
struct ProtocolMetrics<'a> {
    handles: &'a mut ProtocolHandles,
    recorder: &'a dyn Recorder,
    protocol: &'static str,
}

impl ProtocolMetrics<'_> {
    fn counter(&self, name: &'static str, label: &'static str, value: Value<'_>) -> Counter {
        let key = key(self.protocol, name, Some((label, value.shared())));
        self.recorder.register_counter(&key, &METADATA)
    }

    fn accepted(&mut self) -> &Counter {
        let (recorder, protocol) = (self.recorder, self.protocol);
        self.handles.accepted.get_or_insert_with(|| {
            let key = key(protocol, CONNECTIONS, Some(("outcome", "accepted".into())));
            recorder.register_counter(&key, &METADATA)
        })
    }

    fn rejected(&mut self) -> &Counter {
        let (recorder, protocol) = (self.recorder, self.protocol);
        self.handles.rejected.get_or_insert_with(|| {
            let key = key(protocol, CONNECTIONS, Some(("outcome", "rejected".into())));
            recorder.register_counter(&key, &METADATA)
        })
    }

    fn active(&mut self) -> &Gauge {
        let (recorder, protocol) = (self.recorder, self.protocol);
        self.handles
            .active
            .get_or_insert_with(|| recorder.register_gauge(&key(protocol, ACTIVE, None), &METADATA))
    }

    fn duration(&mut self) -> &Histogram {
        let (recorder, protocol) = (self.recorder, self.protocol);
        self.handles.duration.get_or_insert_with(|| {
            recorder.register_histogram(&key(protocol, DURATION, None), &METADATA)
        })
    }

    /// Count a session's end for `reason`, keeping its handle while there is room (reasons
    /// are few: room runs out only for labels of the same text from many places).
    fn count_close(&mut self, reason: &'static str) {
        let found = self
            .handles
            .closed
            .iter()
            .find(|(r, _)| std::ptr::eq(*r, reason));
        if let Some((_, counter)) = found {
            return counter.increment(1);
        }
        let counter = self.counter(CLOSED, "reason", Value::Static(reason));
        counter.increment(1);
        if self.handles.closed.len() < MOST_HANDLES {
            self.handles.closed.push((reason, counter));
        }
    }

    /// Count a refusal by `layer`, keeping its handle while there is room.
    fn count_rejection(&mut self, layer: Value<'_>) {
        let found = self
            .handles
            .rejections
            .iter()
            .find(|(l, _)| l == layer.as_str());
        if let Some((_, counter)) = found {
            return counter.increment(1);
        }
        let counter = self.counter(REJECTIONS, "layer", layer);
        counter.increment(1);
        if self.handles.rejections.len() < MOST_HANDLES {
            self.handles.rejections.push((layer.shared(), counter));
        }
    }
}

/// The key of metric `name` of `protocol`, with one more label if any.
fn key(
    protocol: &'static str,
    name: &'static str,
    extra: Option<(&'static str, Cow<'static, str>)>,
) -> Key {
    let mut labels = vec![Label::new("protocol", protocol)];
    if let Some((label, value)) = extra {
        labels.push(Label::new(label, value));
    }
    Key::from_parts(name, labels)
}

/// The address that tells `recorder` apart, or `None` for one that cannot be told apart from
/// other recorders without size.
fn identity(recorder: &dyn Recorder) -> Option<usize> {
    if std::mem::size_of_val(recorder) == 0 {
        return None;
    }
    Some((recorder as *const dyn Recorder).cast::<()>() as usize)
}

/// Run `record` on `protocol`'s metrics in the recorder in force: on this thread's kept
/// handles, or, when they cannot be used (the recorder has no identity, the thread is ending, a
/// metric is recorded from inside another), on handles resolved for this use only.
fn with_handles(protocol: Protocol, record: impl FnOnce(&mut ProtocolMetrics<'_>)) {
    let index = match protocol {
        Protocol::Imap => 0,
        Protocol::Pop3 => 1,
    };
    let protocol = protocol.as_str();
    metrics::with_recorder(|recorder| {
        let mut record = Some(record);
        if let Some(id) = identity(recorder) {
            let _ = HANDLES.try_with(|handles| {
                if let Ok(mut handles) = handles.try_borrow_mut()
                    && let Some(record) = record.take()
                {
                    let handles = &mut handles.of(id).protocols[index];
                    record(&mut ProtocolMetrics {
                        handles,
                        recorder,
                        protocol,
                    });
                }
            });
        }
        if let Some(record) = record {
            // Not run above: handles for this use only.
            record(&mut ProtocolMetrics {
                handles: &mut ProtocolHandles::new(),
                recorder,
                protocol,
            });
        }
    });
}
