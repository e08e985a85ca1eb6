//! Latency percentiles and the run's report: a human summary and one line of JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles; `None` for no samples.
    pub fn of(samples: &mut [Duration]) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[index - 1].as_secs_f64() * 1e3
        };
        Some(Latency {
            count: samples.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "count": self.count,
            "p50_ms": round3(self.p50_ms),
            "p99_ms": round3(self.p99_ms),
            "max_ms": round3(self.max_ms),
        })
    }

    pub fn text(&self) -> String {
        format!(
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
            self.p50_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// What a run of connections measured.
#[derive(Debug, Default)]
pub struct Report {
    pub connections: usize,
    pub elapsed: Duration,
    /// Each connection from connect to the server's close.
    pub latencies: Vec<Duration>,
    /// Named steps inside connections (`imap-fetch`'s commands, `pop3-retr`'s RETR).
    pub steps: BTreeMap<&'static str, Vec<Duration>>,
    pub fetches: usize,
    pub bytes: u64,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.connections as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Print the human summary, and return the JSON fields the run adds to the summary line.
    pub fn print(&mut self) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        println!(
            "{} connections in {:.3} s: {:.0} conn/s",
            self.connections,
            self.elapsed.as_secs_f64(),
            self.rate()
        );
        fields.insert("connections".into(), json!(self.connections));
        fields.insert("seconds".into(), json!(round3(self.elapsed.as_secs_f64())));
        fields.insert("conn_per_s".into(), json!(self.rate().round()));
        if let Some(latency) = Latency::of(&mut self.latencies) {
            println!("connection latency: {}", latency.text());
            fields.insert("latency".into(), latency.json());
        }
        let mut steps = serde_json::Map::new();
        for (name, samples) in &mut self.steps {
            if let Some(latency) = Latency::of(samples) {
                println!("{name}: {}", latency.text());
                steps.insert((*name).to_owned(), latency.json());
            }
        }
        if !steps.is_empty() {
            fields.insert("steps".into(), Value::Object(steps));
        }
        if self.fetches > 0 {
            println!(
                "FETCH responses: {} ({} per connection)",
                self.fetches,
                self.fetches / self.connections.max(1)
            );
            fields.insert("fetch_responses".into(), json!(self.fetches));
        }
        if self.bytes > 0 {
            println!("bytes read: {}", self.bytes);
            fields.insert("bytes".into(), json!(self.bytes));
        }
        fields
    }
}

pub fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let latency = Latency::of(&mut samples).unwrap();
        assert_eq!(
            (latency.p50_ms, latency.p99_ms, latency.max_ms),
            (50.0, 99.0, 100.0)
        );
        assert_eq!(Latency::of(&mut []), None);
        let one = Latency::of(&mut [Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (7.0, 7.0, 7.0));
    }
}
