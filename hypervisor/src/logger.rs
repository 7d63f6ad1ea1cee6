//! The `log` facade's backend: every record goes to the console as
//! `[seconds.micros] CPUn LEVEL message`, timestamped from the calibrated TSC.

use crate::{arch::x86_64::percpu, arch::x86_64::time, console};
use log::{Level, LevelFilter, Log, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = time::micros_since_boot();
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        console::write_fmt(format_args!(
            "[{:5}.{:06}] CPU{} {} {}\n",
            micros / 1_000_000,
            micros % 1_000_000,
            percpu::current_index(),
            level,
            record.args()
        ));
    }

    fn flush(&self) {}
}

pub fn init(level: LevelFilter) {
    // Only fails if a logger is already set, and this is the only place that sets one.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Parses a `loglvl=` value the way users write it (Xen spells some levels differently).
pub fn parse_level(value: &str) -> Option<LevelFilter> {
    Some(match value {
        "none" | "off" => LevelFilter::Off,
        "error" | "err" => LevelFilter::Error,
        "warn" | "warning" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" | "all" => LevelFilter::Trace,
        _ => return None,
    })
}
