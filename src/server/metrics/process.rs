//! The standard `process_*` series of Prometheus's clients, with their usual names and help, read
//! from Linux's `/proc` at each scrape (prometheus-client has no process collector):
//!
//! - `/proc/self/stat`: CPU time (`utime` + `stime`) and virtual memory size (`vsize`), and once, at
//!   start, the start time (`starttime`, clock ticks after boot, added to `btime` of `/proc/stat`);
//! - `/proc/self/status`: resident memory (`VmRSS`), given in kB, which saves knowing the page size;
//! - `/proc/self/limits`: the soft limit of `Max open files`;
//! - `/proc/self/fd`: one entry per open descriptor, the one listing the directory included.
//!
//! A file that cannot be read or parsed leaves its series out of the scrape rather than failing it.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fs;

/// The unit of the times in `/proc`: USER_HZ, 100 on every architecture Kubernetes runs on. It is
/// what glibc's `sysconf(_SC_CLK_TCK)` answers, and what Prometheus's own `procfs` assumes.
const TICKS_PER_SECOND: f64 = 100.0;

/// The series of this process.
#[derive(Debug)]
pub(super) struct Process {
    /// Unix seconds; read once, since it cannot change.
    start_time: Option<f64>,
}

impl Process {
    pub(super) fn new() -> Self {
        let started =
            read("/proc/self/stat").and_then(|text| Stat::parse(&text)).map(|stat| stat.start_ticks);
        let boot = read("/proc/stat").and_then(|text| boot_time(&text));
        Self {
            start_time: started.zip(boot).map(|(ticks, boot)| boot as f64 + ticks as f64 / TICKS_PER_SECOND),
        }
    }
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = read("/proc/self/stat").and_then(|text| Stat::parse(&text));
        if let Some(stat) = &stat {
            let cpu = (stat.user_ticks + stat.system_ticks) as f64 / TICKS_PER_SECOND;
            counter(
                &mut encoder,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                cpu,
            )?;
        }
        if let Some(open) = open_fds() {
            gauge(&mut encoder, "process_open_fds", "Number of open file descriptors.", open)?;
        }
        if let Some(max) = read("/proc/self/limits").and_then(|text| max_open_files(&text)) {
            gauge(&mut encoder, "process_max_fds", "Maximum number of open file descriptors.", max)?;
        }
        if let Some(stat) = &stat {
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat.virtual_bytes,
            )?;
        }
        if let Some(resident) = read("/proc/self/status").and_then(|text| resident_bytes(&text)) {
            gauge(&mut encoder, "process_resident_memory_bytes", "Resident memory size in bytes.", resident)?;
        }
        if let Some(start) = self.start_time {
            let help = "Start time of the process since unix epoch in seconds.";
            gauge(&mut encoder, "process_start_time_seconds", help, start)?;
        }
        Ok(())
    }
}

/// A counter's descriptor and its one sample; the encoder appends the name's `_total`.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeCounterValue,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The fields of `/proc/self/stat` the series need.
#[derive(Debug, PartialEq)]
struct Stat {
    user_ticks: u64,
    system_ticks: u64,
    start_ticks: u64,
    virtual_bytes: u64,
}

impl Stat {
    /// Fields are counted from after the command name, which is in parentheses and may itself hold
    /// spaces and parentheses: the last `)` ends it. Field 3 of proc(5), the state, is then the first.
    fn parse(text: &str) -> Option<Self> {
        let (_, after_name) = text.rsplit_once(')')?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let field = |number: usize| fields.get(number - 3)?.parse().ok();
        Some(Self {
            user_ticks: field(14)?,
            system_ticks: field(15)?,
            start_ticks: field(22)?,
            virtual_bytes: field(23)?,
        })
    }
}

/// `btime` of `/proc/stat`: the boot time, in Unix seconds.
fn boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kilobytes: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kilobytes * 1024)
}

/// The soft limit in the `Max open files` row of `/proc/self/limits`; `None` when it is not a number.
fn max_open_files(text: &str) -> Option<u64> {
    let row = text.lines().find_map(|line| line.strip_prefix("Max open files"))?;
    row.split_whitespace().next()?.parse().ok()
}

fn open_fds() -> Option<u64> {
    Some(fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_end_of_the_command_name() {
        let text = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 1210 0 0 0 250 75 0 0 20 0 9 0 \
                    1234567 73400320 3100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            Stat::parse(text),
            Some(Stat { user_ticks: 250, system_ticks: 75, start_ticks: 1234567, virtual_bytes: 73400320 })
        );
        assert_eq!(Stat::parse("4242 (cut short) S 1 2"), None);
        assert_eq!(Stat::parse(""), None);
    }

    #[test]
    fn the_other_files_give_one_number_each() {
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 42\n"), Some(1_700_000_000));
        assert_eq!(
            resident_bytes("Name:\tbellwether\nVmRSS:\t   14532 kB\nVmData:\t 1 kB\n"),
            Some(14532 * 1024)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             96363                96363                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files("Max open files            unlimited            unlimited            files\n"),
            None
        );
        assert_eq!(boot_time(""), None);
        assert_eq!(resident_bytes("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn this_process_has_every_series() {
        let stat = read("/proc/self/stat").and_then(|text| Stat::parse(&text)).expect("a readable stat");
        assert!(stat.virtual_bytes > 0);
        let resident = read("/proc/self/status").and_then(|text| resident_bytes(&text)).expect("a VmRSS");
        assert!(resident > 0 && resident <= stat.virtual_bytes, "{resident} of {}", stat.virtual_bytes);
        let max = read("/proc/self/limits").and_then(|text| max_open_files(&text)).expect("a limit");
        let open = open_fds().expect("a listing of /proc/self/fd");
        // The listing's own descriptor, at least.
        assert!(open >= 1 && open <= max, "{open} of {max}");
        assert!(Process::new().start_time.is_some());
    }
}
