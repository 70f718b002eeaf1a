//! Calendar features: per-period numbers (e.g. the days from the nearest Christmas) read from a
//! second CSV file (`demand.calendar`), aligned with the periods of a demand data file. The file
//! has a header with a `period` column (the file period of the demand data, from 0) and one
//! column per feature; other columns (a date, flags) are ignored; rows may come in any order and
//! need not be contiguous, but every period a split reads must be there (checked where the setting
//! is resolved, `config/instance.rs`).
//!
//! A policy sees the features of the *current* period: at period `t` of a split whose
//! `periods_range` starts at `a`, with `P = demand.past_periods`, the row of file period
//! `a + P + t` (the reference's alignment, spec §1.7). The values are passed raw.
//!
//! Every defect is a [`CalendarFileError`] naming the file, the line and the column: a missing
//! file, a header without `period` or without a requested column, a non-integer or repeated
//! period, a non-numeric or non-finite cell. A loaded file is cached like a demand file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use ndarray::Array2;

/// Why a calendar file cannot be used. `line` is the 1-based line of the file (the header is
/// line 1), when the defect has one.
#[derive(Debug, thiserror::Error)]
#[error("calendar file `{path}`{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct CalendarFileError {
    /// The file.
    pub path: String,
    /// The line of the defect, if it has one.
    pub line: Option<u64>,
    /// What is wrong (names the column and the value, and what is allowed).
    pub message: String,
}

/// The requested columns of a calendar file, by file period.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    columns: Vec<String>,
    /// `values[period · C + c]`, periods `0 … max period` (absent periods hold 0).
    values: Vec<f32>,
    /// Whether the file has a row for each period.
    present: Vec<bool>,
}

/// The cache key: a file is read again when its size or modification time changes.
type CacheKey = (PathBuf, Vec<String>, u64, Option<SystemTime>);

fn cache() -> &'static Mutex<HashMap<CacheKey, Arc<Calendar>>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Arc<Calendar>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Calendar {
    /// Reads the `columns` of `path` (see the module documentation), or returns the copy
    /// already read.
    pub fn load(path: &Path, columns: &[String]) -> Result<Arc<Calendar>, CalendarFileError> {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
        let key = (
            path.to_path_buf(),
            columns.to_vec(),
            meta.len(),
            meta.modified().ok(),
        );
        if let Some(c) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(c);
        }
        let calendar = Arc::new(Calendar::read(path, columns)?);
        if let Ok(mut c) = cache().lock() {
            c.insert(key, Arc::clone(&calendar));
        }
        Ok(calendar)
    }

    /// Reads and checks the `columns` of `path`, without the cache.
    pub fn read(path: &Path, columns: &[String]) -> Result<Calendar, CalendarFileError> {
        let error = |line: Option<u64>, message: String| CalendarFileError {
            path: path.display().to_string(),
            line,
            message,
        };
        let file = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(std::io::BufReader::new(file));
        let csv_error = |e: csv::Error| {
            let line = e.position().map(|p| p.line());
            match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => error(
                    line,
                    format!(
                        "the row has {len} fields but the header has {expected_len}; every row \
                         needs one field per header column"
                    ),
                ),
                _ => error(line, format!("is not valid CSV: {e}")),
            }
        };
        let header: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(str::to_string)
            .collect();
        let find = |name: &str| header.iter().position(|h| h == name);
        let Some(period_column) = find("period") else {
            return Err(error(
                Some(1),
                format!(
                    "the header is `{}`; a calendar file needs a `period` column (the demand \
                     file's period, from 0) and one column per feature",
                    header.join(",")
                ),
            ));
        };
        let mut indices = Vec::with_capacity(columns.len());
        for name in columns {
            match find(name) {
                Some(i) if i != period_column => indices.push(i),
                _ => {
                    let available: Vec<&str> = header
                        .iter()
                        .filter(|h| *h != "period")
                        .map(String::as_str)
                        .collect();
                    return Err(error(
                        Some(1),
                        format!(
                            "has no column `{name}` (demand.calendar.columns); allowed: {}",
                            available.join(", ")
                        ),
                    ));
                }
            }
        }
        let c = columns.len();
        let mut values: Vec<f32> = Vec::new();
        let mut present: Vec<bool> = Vec::new();
        let mut first_line: HashMap<usize, u64> = HashMap::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(csv_error)? {
            let line = record.position().map_or(0, |p| p.line());
            let text = &record[period_column];
            let period = text.parse::<usize>().map_err(|_| {
                error(
                    Some(line),
                    format!("column `period`: `{text}` is not a period; allowed: an integer ≥ 0"),
                )
            })?;
            if period > crate::config::limits::MAX_PERIODS {
                return Err(error(
                    Some(line),
                    format!(
                        "column `period`: {period} is too large; allowed: 0 … {}",
                        crate::config::limits::MAX_PERIODS
                    ),
                ));
            }
            if let Some(previous) = first_line.insert(period, line) {
                return Err(error(
                    Some(line),
                    format!(
                        "period {period} appears twice (also on line {previous}); every period \
                         must appear once"
                    ),
                ));
            }
            if period >= present.len() {
                present.resize(period + 1, false);
                values.resize((period + 1) * c, 0.0);
            }
            present[period] = true;
            for (k, (&i, name)) in indices.iter().zip(columns).enumerate() {
                let cell = &record[i];
                let value = cell
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        error(
                            Some(line),
                            format!(
                                "column `{name}`: `{cell}` is not a number; allowed: a finite \
                                 number"
                            ),
                        )
                    })?;
                values[period * c + k] = value;
            }
        }
        if present.is_empty() {
            return Err(error(None, "has a header but no data rows".to_string()));
        }
        Ok(Calendar {
            columns: columns.to_vec(),
            values,
            present,
        })
    }

    /// The feature columns, in the order of the setting.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The first period of `periods` the file has no row for.
    pub fn first_missing(&self, periods: Range<usize>) -> Option<usize> {
        periods
            .into_iter()
            .find(|&p| !self.present.get(p).copied().unwrap_or(false))
    }

    /// The features of file periods `periods`, `(len, C)`, row `j` = period `periods.start + j`;
    /// a period past the file's last row reads the last row (the reference clamps the same way).
    pub fn window(&self, periods: Range<usize>) -> Array2<f32> {
        let c = self.columns.len();
        let last = self.present.len().saturating_sub(1);
        let mut out = Array2::zeros((periods.len(), c));
        for (j, p) in periods.enumerate() {
            let p = p.min(last);
            for k in 0..c {
                out[[j, k]] = self.values[p * c + k];
            }
        }
        out
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> CalendarFileError {
    CalendarFileError {
        path: path.display().to_string(),
        line: None,
        message: format!("cannot be read: {e}"),
    }
}
