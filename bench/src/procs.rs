//! Child processes: the Kafka broker (fresh per scenario), the real service binaries and the
//! Python peers, each with its memory sampled from /proc/PID/status (VmRSS, VmHWM).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use zoomstream_tests::broker::KafkaCluster;

pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// (VmRSS, VmHWM) of a process in MiB.
pub fn rss_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds (user + system) a process used so far.
#[allow(unsafe_code)] // sysconf(3) for the clock tick
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

pub fn self_peak_rss_mb() -> Option<f64> {
    rss_mb(std::process::id()).map(|(_, hwm)| hwm)
}

/// A running child with a memory sampler.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    peak: Arc<Mutex<f64>>,
    cpu: Arc<Mutex<Option<f64>>>,
    stop: Arc<AtomicBool>,
    started: Instant,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RssReport {
    pub name: String,
    /// Highest VmHWM seen (MiB).
    pub peak_mb: f64,
    /// VmRSS samples: (seconds since start, MiB).
    pub series: Vec<(f64, f64)>,
    /// CPU seconds used (user + system), when known.
    pub cpu_s: Option<f64>,
}

impl RssReport {
    /// VmRSS at the end of the first and of the last fifth of the run, and their ratio: a flat
    /// process stays near 1 once warm.
    pub fn flatness(&self) -> Option<(f64, f64)> {
        let n = self.series.len();
        if n < 10 {
            return None;
        }
        let avg = |s: &[(f64, f64)]| s.iter().map(|x| x.1).sum::<f64>() / s.len() as f64;
        Some((
            avg(&self.series[n / 5..2 * n / 5]),
            avg(&self.series[4 * n / 5..]),
        ))
    }
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> anyhow::Result<Proc> {
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log)?;
        cmd.stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        let pid = child.id();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let peak = Arc::new(Mutex::new(0.0f64));
        let cpu = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        {
            let (samples, peak, cpu, stop) =
                (samples.clone(), peak.clone(), cpu.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match rss_mb(pid) {
                        Some((rss, hwm)) => {
                            samples
                                .lock()
                                .unwrap()
                                .push((started.elapsed().as_secs_f64(), rss));
                            let mut p = peak.lock().unwrap();
                            *p = p.max(hwm);
                            if let Some(c) = cpu_seconds(pid) {
                                *cpu.lock().unwrap() = Some(c);
                            }
                        }
                        None => break,
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        Ok(Proc {
            name: name.to_owned(),
            child,
            log,
            samples,
            peak,
            cpu,
            stop,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn rss(&self) -> RssReport {
        // One last sample, so short runs have their peak.
        if let Some((rss, hwm)) = rss_mb(self.pid()) {
            self.samples
                .lock()
                .unwrap()
                .push((self.started.elapsed().as_secs_f64(), rss));
            let mut p = self.peak.lock().unwrap();
            *p = p.max(hwm);
        }
        RssReport {
            name: self.name.clone(),
            peak_mb: *self.peak.lock().unwrap(),
            series: self.samples.lock().unwrap().clone(),
            cpu_s: cpu_seconds(self.pid()).or(*self.cpu.lock().unwrap()),
        }
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the memory report taken just before.
    #[allow(unsafe_code)] // kill(2): std's Child::kill only sends SIGKILL
    pub fn stop(mut self, grace: Duration) -> RssReport {
        let report = self.rss();
        self.stop.store(true, Ordering::Relaxed);
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.alive() {
                return report;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        report
    }

    /// Waits for the child to exit by itself.
    pub fn wait(
        mut self,
        timeout: Duration,
    ) -> anyhow::Result<(std::process::ExitStatus, RssReport)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stop.store(true, Ordering::Relaxed);
                let mut report = self.rss();
                // /proc is gone after exit: the sampler's peak is what we have.
                report.peak_mb = *self.peak.lock().unwrap();
                return Ok((status, report));
            }
            if Instant::now() > deadline {
                let name = self.name.clone();
                let log = self.log.clone();
                let _ = self.stop(Duration::from_secs(1));
                bail!(
                    "{name} did not finish within {timeout:?} (log: {})",
                    log.display()
                );
            }
            // Keep the peak and CPU fresh: /proc is lost once the process exits.
            if let Some((_, hwm)) = rss_mb(self.pid()) {
                let mut p = self.peak.lock().unwrap();
                *p = p.max(hwm);
            }
            if let Some(c) = cpu_seconds(self.pid()) {
                *self.cpu.lock().unwrap() = Some(c);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    /// A scenario that failed half-way must not leave its broker or services running.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A one-node Apache Kafka (the test kit's) shared by the runs of one scenario group (e.g. every
/// processor drain), its data and log under the run's log folder. Each drain gets a fresh raw
/// topic on it; a new group gets a new broker. A broker per run cost ~10 s of start-up and
/// topic creation each, ~5 minutes of a full run.
pub struct SharedBroker {
    cluster: KafkaCluster,
    pub addr: String,
    pub group: String,
}

impl SharedBroker {
    pub fn start(log_dir: &Path, group: &str) -> anyhow::Result<SharedBroker> {
        let dir = log_dir.join(format!("kafka-{group}"));
        // A rerun of a group starts from nothing.
        let _ = std::fs::remove_dir_all(&dir);
        let cluster = KafkaCluster::start_in(1, dir);
        let addr = cluster.bootstrap();
        Ok(SharedBroker {
            cluster,
            addr,
            group: group.to_owned(),
        })
    }

    fn pid(&self) -> u32 {
        self.cluster.node(1).pid().expect("the broker runs")
    }

    /// A run's use of the broker, measured from now until [`Broker::stop`].
    pub fn lease(&self, name: &str) -> Broker {
        let pid = self.pid();
        Broker {
            addr: self.addr.clone(),
            pid,
            cpu_at_start: cpu_seconds(pid).unwrap_or(0.0),
            name: name.to_owned(),
        }
    }
}

/// One run's lease of a [`SharedBroker`].
pub struct Broker {
    pub addr: String,
    pid: u32,
    cpu_at_start: f64,
    name: String,
}

impl Broker {
    /// Ends the run's lease (the broker keeps running for the group's next run): its peak
    /// memory so far and the CPU seconds it used during the run.
    pub fn stop(self) -> RssReport {
        RssReport {
            name: self.name,
            peak_mb: rss_mb(self.pid).map_or(0.0, |(_, hwm)| hwm),
            series: Vec::new(),
            cpu_s: cpu_seconds(self.pid).map(|now| now - self.cpu_at_start),
        }
    }
}

/// A plain HTTP/1.0 GET against a local endpoint (for /metrics and /readyz), without a client
/// library: (status, body).
pub fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sum of every sample of a Prometheus metric family (all label sets).
pub fn metric_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
