use std::borrow::Cow;
use std::cell::RefCell;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use tower_mail::{CloseReason, CloseReport, Reject, Session, SessionEvent, SessionObserver};

use crate::on_close::CloseHook;

/// Counts a connection as accepted when its session starts.
#[derive(Debug)]
pub(super) struct StartObserver;

impl SessionObserver for StartObserver {
    fn on_event(&self, session: &Session, event: &SessionEvent<'_>) -> Result<(), Reject> {
        if let SessionEvent::Started = event {
            let protocol = session.protocol().as_str();
            counter(
                CONNECTIONS,
                protocol,
                ("outcome", Value::Static("accepted")),
                |c| c.increment(1),
            );
            gauge(ACTIVE, protocol, |g| g.increment(1.0));
        }
        Ok(())
    }
}

/// Records a connection's end: a close for sessions that started, a refusal otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RecordClose;

impl CloseHook for RecordClose {
    fn on_close(&self, session: &Session, report: &CloseReport) {
        let protocol = session.protocol().as_str();
        // `has_started` pairs exactly with the Started event: both happen in
        // `Connection::into_parts`, which notifies every observer.
        if session.has_started() {
            gauge(ACTIVE, protocol, |g| g.decrement(1.0));
            let reason = report.reason.as_str();
            counter(CLOSED, protocol, ("reason", Value::Static(reason)), |c| {
                c.increment(1)
            });
            let seconds = report.duration.as_secs_f64();
            histogram(DURATION, protocol, |h| h.record(seconds));
            return;
        }
        let layer = match &report.reason {
            CloseReason::Rejected(reject) => Value::Dynamic(reject.layer()),
            other => Value::Static(other.as_str()),
        };
        counter(
            CONNECTIONS,
            protocol,
            ("outcome", Value::Static("rejected")),
            |c| c.increment(1),
        );
        counter(REJECTIONS, protocol, ("layer", layer), |c| c.increment(1));
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
/// a thread resolves each handle once and then only uses it: a connection costs a few atomic
/// operations (and the histogram's sample). Handles are kept per thread, so no lock guards
/// them, and per recorder: the recorder in force at each event is still the one recorded into
/// (`with_recorder`), and when it is another one than the handles came from (a global recorder
/// installed since, a local one), they are resolved from it afresh.
///
/// Recorders are told apart by address. A recorder without size (the no-op one) has no
/// address of its own, so its handles are not kept; one that takes the place of another at the
/// same address on the same thread (a local recorder on the stack, made anew in a loop) would
/// be taken for it, so such a recorder needs its own layer on a new thread (what tests get).
struct Handles {
    recorder: usize,
    counters: Vec<(CounterId, Counter)>,
    gauges: Vec<((&'static str, &'static str), Gauge)>,
    histograms: Vec<((&'static str, &'static str), Histogram)>,
}

/// A counter's name and labels: the protocol and one more.
struct CounterId {
    name: &'static str,
    protocol: &'static str,
    label: &'static str,
    value: Cow<'static, str>,
}

/// More kept handles of one kind than this on one thread means label values without bound
/// (layer names made up per refusal, say): the others are resolved per use.
const MOST_HANDLES: usize = 64;

impl Handles {
    const fn new() -> Handles {
        Handles {
            recorder: 0,
            counters: Vec::new(),
            gauges: Vec::new(),
            histograms: Vec::new(),
        }
    }

    /// Make these the handles of `recorder`, dropping those of another.
    fn of(&mut self, recorder: usize) -> &mut Handles {
        if self.recorder != recorder {
            self.counters.clear();
            self.gauges.clear();
            self.histograms.clear();
            self.recorder = recorder;
        }
        self
    }
}

thread_local! {
    static HANDLES: RefCell<Handles> = const { RefCell::new(Handles::new()) };
}

/// The address that tells `recorder` apart, or `None` for one that cannot be told apart from
/// other recorders without size.
fn identity(recorder: &dyn Recorder) -> Option<usize> {
    if std::mem::size_of_val(recorder) == 0 {
        return None;
    }
    Some((recorder as *const dyn Recorder).cast::<()>() as usize)
}

/// Run `use_it` on the handle `find_or_make` gives from this thread's handles of the recorder in
/// force, or, when they cannot be used (the recorder has no identity, the thread is ending, a
/// metric is recorded from inside another, too many handles), on a handle resolved for this
/// use only.
fn with_handle<H>(
    find_or_make: impl for<'a> FnOnce(&'a mut Handles, &dyn Recorder) -> Option<&'a H>,
    resolve: impl FnOnce(&dyn Recorder) -> H,
    use_it: impl FnOnce(&H),
) {
    metrics::with_recorder(|recorder| {
        let mut use_it = Some(use_it);
        if let Some(id) = identity(recorder) {
            let _ = HANDLES.try_with(|handles| {
                let Ok(mut handles) = handles.try_borrow_mut() else {
                    return;
                };
                if let Some(handle) = find_or_make(handles.of(id), recorder)
                    && let Some(use_it) = use_it.take()
                {
                    use_it(handle);
                }
            });
        }
        if let Some(use_it) = use_it {
            use_it(&resolve(recorder));
        }
    });
}

/// The handle in `handles` whose id `matches`, or a new one from `make` while there is room.
fn cached<I, H>(
    handles: &mut Vec<(I, H)>,
    matches: impl Fn(&I) -> bool,
    make: impl FnOnce() -> (I, H),
) -> Option<&H> {
    let at = match handles.iter().position(|(id, _)| matches(id)) {
        Some(at) => at,
        None if handles.len() < MOST_HANDLES => {
            handles.push(make());
            handles.len() - 1
        }
        None => return None,
    };
    Some(&handles[at].1)
}

fn counter(
    name: &'static str,
    protocol: &'static str,
    (label, value): (&'static str, Value<'_>),
    use_it: impl FnOnce(&Counter),
) {
    let key = || {
        Key::from_parts(
            name,
            vec![
                Label::new("protocol", protocol),
                Label::new(label, value.shared()),
            ],
        )
    };
    with_handle(
        |handles, recorder| {
            cached(
                &mut handles.counters,
                |id| {
                    id.name == name
                        && id.protocol == protocol
                        && id.label == label
                        && id.value == value.as_str()
                },
                || {
                    let id = CounterId {
                        name,
                        protocol,
                        label,
                        value: value.shared(),
                    };
                    (id, recorder.register_counter(&key(), &METADATA))
                },
            )
        },
        |recorder| recorder.register_counter(&key(), &METADATA),
        use_it,
    );
}

fn gauge(name: &'static str, protocol: &'static str, use_it: impl FnOnce(&Gauge)) {
    let key = || Key::from_parts(name, vec![Label::new("protocol", protocol)]);
    with_handle(
        |handles, recorder| {
            cached(
                &mut handles.gauges,
                |id| *id == (name, protocol),
                || ((name, protocol), recorder.register_gauge(&key(), &METADATA)),
            )
        },
        |recorder| recorder.register_gauge(&key(), &METADATA),
        use_it,
    );
}

fn histogram(name: &'static str, protocol: &'static str, use_it: impl FnOnce(&Histogram)) {
    let key = || Key::from_parts(name, vec![Label::new("protocol", protocol)]);
    with_handle(
        |handles, recorder| {
            cached(
                &mut handles.histograms,
                |id| *id == (name, protocol),
                || {
                    (
                        (name, protocol),
                        recorder.register_histogram(&key(), &METADATA),
                    )
                },
            )
        },
        |recorder| recorder.register_histogram(&key(), &METADATA),
        use_it,
    );
}
