//! The example server as a child process: started with a configuration of the measure's
//! choosing, its listeners read from its output, its memory and threads read from /proc.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// A running example server.
pub struct ExampleServer {
    child: Child,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
}

impl ExampleServer {
    /// Start `binary` in `dir` with `config` (TOML, listeners on ephemeral ports added here).
    pub fn start(binary: &Path, dir: &Path, config: &str) -> Result<ExampleServer, String> {
        let config = format!(
            "[imap]\nlisten = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\n\
             [pop3]\nlisten = \"\"\ntls_listen = \"\"\n\
             [metrics]\nlisten = \"\"\n\
             [log]\nformat = \"json\"\n{config}"
        );
        let path = dir.join("server.toml");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut imap = None;
        let mut imaps = None;
        while imap.is_none() || imaps.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "the server did not report its listeners".to_owned())?;
            let address = || line.rsplit(' ').next()?.parse::<SocketAddr>().ok();
            if line.starts_with("IMAP (STARTTLS) listening on") {
                imap = address();
            } else if line.starts_with("IMAP (TLS) listening on") {
                imaps = address();
            }
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Ok(ExampleServer {
            child,
            imap: imap.unwrap(),
            imaps: imaps.unwrap(),
        })
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        ProcStatus(self.child.id()).read("VmRSS:")
    }

    /// Sample resident memory and threads every 10 ms until the returned probe is stopped;
    /// the probe then gives the peaks.
    pub fn watch(&self) -> Peaks {
        let pid = self.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let rss = Arc::new(AtomicU64::new(0));
        let threads = Arc::new(AtomicU64::new(0));
        let (s, r, t) = (stop.clone(), rss.clone(), threads.clone());
        let sampler = std::thread::spawn(move || {
            let probe = ProcStatus(pid);
            while !s.load(Ordering::Relaxed) {
                r.fetch_max(probe.read("VmRSS:"), Ordering::Relaxed);
                t.fetch_max(probe.read("Threads:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Peaks {
            stop,
            rss,
            threads,
            sampler: Some(sampler),
        }
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ProcStatus(u32);

impl ProcStatus {
    fn read(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

/// Peak resident memory (KiB) and threads seen while a scenario ran.
pub struct Peaks {
    stop: Arc<AtomicBool>,
    rss: Arc<AtomicU64>,
    threads: Arc<AtomicU64>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Peaks {
    /// Stop sampling: (peak resident KiB, peak threads).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        (
            self.rss.load(Ordering::Relaxed),
            self.threads.load(Ordering::Relaxed),
        )
    }
}

/// The example server binary: next to this one (both are examples of one build).
pub fn binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let server = me.with_file_name("server");
    match server.exists() {
        true => Ok(server),
        false => Err(format!(
            "{} not found: build it first (cargo build --release --example server)",
            server.display()
        )),
    }
}
