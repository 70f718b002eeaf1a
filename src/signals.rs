//! SIGINT (Ctrl-C) and SIGTERM (what schedulers send) for the commands that run long and write
//! checkpoints (`hdpo train`, `hdpo reproduce`).
//!
//! The first signal raises the stop flag the trainer reads between epochs: the command writes a
//! checkpoint at that safe point and exits with `128 + signal` (130 for SIGINT, 143 for SIGTERM).
//! Once the final checkpoint is written ([`Interrupt::finishing`], e.g. during the test pass) or on
//! a second signal, the process exits at once with that code: every file is written atomically, so
//! the last checkpoint written stays valid.
//!
//! A watcher thread receives the signals (`signal-hook`'s iterator: it says *which* signal came,
//! which the `ctrlc` crate cannot, and it runs ordinary code, so it can print and exit).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

/// SIGINT's number.
pub const SIGINT: i32 = 2;
/// SIGTERM's number.
pub const SIGTERM: i32 = 15;

/// The process-wide interrupt state (one watcher thread per process).
pub struct Interrupt {
    stop: AtomicBool,
    signal: AtomicI32,
    finishing: AtomicBool,
    /// How to continue, printed when the process exits at once.
    note: Mutex<String>,
}

static INTERRUPT: OnceLock<Interrupt> = OnceLock::new();

/// The exit code of a command stopped by `signal`: `128 + signal`.
pub fn exit_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(130)
}

/// `SIGINT`, `SIGTERM`.
pub fn name(signal: i32) -> String {
    match signal {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        other => format!("signal {other}"),
    }
}

/// Installs the handlers (once per process) and returns the state.
pub fn install() -> Result<&'static Interrupt, String> {
    if let Some(interrupt) = INTERRUPT.get() {
        return Ok(interrupt);
    }
    let interrupt = INTERRUPT.get_or_init(|| Interrupt {
        stop: AtomicBool::new(false),
        signal: AtomicI32::new(0),
        finishing: AtomicBool::new(false),
        note: Mutex::new(String::new()),
    });
    watch(interrupt)?;
    Ok(interrupt)
}

#[cfg(unix)]
fn watch(interrupt: &'static Interrupt) -> Result<(), String> {
    use signal_hook::iterator::Signals;
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install the SIGINT/SIGTERM handlers: {e}"))?;
    std::thread::Builder::new()
        .name("hdpo-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                interrupt.received(signal);
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// Elsewhere: the stop flag only (every signal counts as SIGINT).
#[cfg(not(unix))]
fn watch(interrupt: &'static Interrupt) -> Result<(), String> {
    let _ = interrupt;
    Ok(())
}

impl Interrupt {
    /// The flag a trainer polls between epochs.
    pub fn flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Training phase: a first signal stops at the next safe point. `note` says how to continue
    /// if a second signal stops the process at once.
    pub fn training(&self, note: &str) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = note.to_string();
        self.finishing.store(false, Ordering::SeqCst);
    }

    /// Replaces the note printed if the process exits at once (e.g. after each checkpoint).
    pub fn set_note(&self, note: &str) {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = note.to_string();
    }

    /// Final phase (the checkpoint is complete): a signal stops the process at once. Returns the
    /// signal if one already came (the caller then exits with its code).
    pub fn finishing(&self, note: &str) -> Option<i32> {
        *self.note.lock().unwrap_or_else(|e| e.into_inner()) = note.to_string();
        self.finishing.store(true, Ordering::SeqCst);
        self.signal()
    }

    fn received(&self, signal: i32) {
        let first = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        self.stop.store(true, Ordering::SeqCst);
        let note = self.note.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut stderr = std::io::stderr();
        if first && !self.finishing.load(Ordering::SeqCst) {
            let _ = std::io::Write::write_fmt(
                &mut stderr,
                format_args!(
                    "\nhdpo: {} received: stopping at the next safe point (a checkpoint is \
                     written); send it again to stop at once\n",
                    name(signal)
                ),
            );
            return;
        }
        let why = if first {
            format!("{} after the final checkpoint", name(signal))
        } else {
            format!("second signal ({})", name(signal))
        };
        let _ = std::io::Write::write_fmt(
            &mut stderr,
            format_args!("\nhdpo: {why}: stopping now; {note}\n"),
        );
        std::process::exit(i32::from(exit_code(signal)));
    }
}
