//! Demand from data: historical series read from a CSV file, one series per (sample, store), and
//! the checks of the file. Two layouts ([`DataFormat`]): *long*, one row per cell with the header
//! `sample,store,period,demand`, rows in any order; and *wide*, one row per (sample, store) with
//! the header `sample,store,` followed by one column per period (their names are free, e.g.
//! `w000 … w170`; the k-th column is period k), rows in any order. Samples, stores and periods are
//! numbered from 0 and every (sample, store, period) must appear exactly once.
//!
//! The file is read record by record with the `csv` reader; only the parsed values are kept (4
//! bytes a cell, plus the indices of each row until they are sorted). A loaded file is kept in a
//! process-wide cache keyed by its path, size and modification time, so resolving a setting
//! repeatedly (validation, each split's generator, the evaluator) reads it once.
//!
//! Every defect is a [`DataFileError`] naming the file, the line and the column: a missing file,
//! a bad header, a non-numeric, non-finite or (unless [`NegativeDemand::Zero`]) negative cell, a
//! ragged row, a duplicate or missing cell. Which periods a split reads is the setting's business
//! (`config/instance.rs`); the values are served by [`crate::scenario`].

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Layout of a demand data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// One row per cell: header `sample,store,period,demand`.
    Long,
    /// One row per (sample, store): header `sample,store,` then one column per period.
    Wide,
}

/// What a negative cell of a demand data file (a return) means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NegativeDemand {
    /// A negative cell is an error naming its line and column (default).
    #[default]
    Error,
    /// A negative cell is read as zero demand: a return is not demand a policy can serve, and
    /// the simulator's lost-sales dynamics are defined for demand ≥ 0.
    Zero,
}

/// Which of a demand file's stores make the network's stores (`demand.stores`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataStores {
    /// Every store of the file is a store of the network: the counts must agree (default).
    #[default]
    All,
    /// The file's first `network.n_stores` stores (stores 0 … S − 1), e.g. the first 5 of 21.
    First,
    /// Every (sample, store) series of the file is a sample of its own with one store: a file of
    /// `N` samples × `S` stores gives `N·S` one-store samples, sample `k` = file sample `k / S`,
    /// store `k mod S` (the file's row order).
    AsSamples,
}

/// Why a demand data file cannot be used. `line` is the 1-based line of the file (the header is
/// line 1), when the defect has one.
#[derive(Debug, thiserror::Error)]
#[error("demand file `{path}`{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct DataFileError {
    /// The file.
    pub path: String,
    /// The line of the defect, if it has one.
    pub line: Option<u64>,
    /// What is wrong (names the column and the value, and what is allowed).
    pub message: String,
}

/// Demand series: `values[(sample·S + store)·T + period]`.
#[derive(Clone, PartialEq)]
pub struct DemandData {
    n_samples: usize,
    n_stores: usize,
    n_periods: usize,
    values: Vec<f32>,
    negatives: usize,
}

impl fmt::Debug for DemandData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemandData")
            .field("n_samples", &self.n_samples)
            .field("n_stores", &self.n_stores)
            .field("n_periods", &self.n_periods)
            .field("negatives", &self.negatives)
            .finish_non_exhaustive()
    }
}

/// The cache key: a file is read again when its size or modification time changes.
type CacheKey = (PathBuf, DataFormat, NegativeDemand, u64, Option<SystemTime>);

fn cache() -> &'static Mutex<HashMap<CacheKey, Arc<DemandData>>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Arc<DemandData>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The cache of selections ([`DemandData::load_selected`]).
type SelectedCache = HashMap<(CacheKey, DataStores, usize), Arc<DemandData>>;

fn selected_cache() -> &'static Mutex<SelectedCache> {
    static CACHE: OnceLock<Mutex<SelectedCache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl DemandData {
    /// Reads `path` (see the module documentation), or returns the copy already read.
    pub fn load(
        path: &Path,
        format: DataFormat,
        negative: NegativeDemand,
    ) -> Result<Arc<DemandData>, DataFileError> {
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
        let key = (
            path.to_path_buf(),
            format,
            negative,
            meta.len(),
            meta.modified().ok(),
        );
        if let Some(data) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(data);
        }
        let data = Arc::new(DemandData::read(path, format, negative)?);
        if let Ok(mut c) = cache().lock() {
            c.insert(key, Arc::clone(&data));
        }
        Ok(data)
    }

    /// Reads and checks `path`, without the cache.
    pub fn read(
        path: &Path,
        format: DataFormat,
        negative: NegativeDemand,
    ) -> Result<DemandData, DataFileError> {
        let file = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(std::io::BufReader::new(file));
        let mut parser = Parser {
            path,
            negative,
            negatives: 0,
        };
        let header = reader
            .headers()
            .map_err(|e| parser.csv_error(&e))?
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        match format {
            DataFormat::Long => parser.read_long(&mut reader, &header),
            DataFormat::Wide => parser.read_wide(&mut reader, &header),
        }
    }

    /// Samples `N` in the file.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Stores `S` in the file.
    pub fn n_stores(&self) -> usize {
        self.n_stores
    }

    /// Periods `T` in the file.
    pub fn n_periods(&self) -> usize {
        self.n_periods
    }

    /// The series seen as `stores` selects them for a network of `n_stores` stores
    /// ([`DataStores`]); `None` when the file cannot give them (more stores than it has, or
    /// [`DataStores::AsSamples`] for more than one store, or `All` with a different count).
    pub fn select(&self, stores: DataStores, n_stores: usize) -> Option<DemandData> {
        match stores {
            DataStores::All => (n_stores == self.n_stores).then(|| self.clone()),
            DataStores::First => (n_stores <= self.n_stores && n_stores > 0).then(|| {
                let mut values = Vec::with_capacity(self.n_samples * n_stores * self.n_periods);
                for sample in 0..self.n_samples {
                    for store in 0..n_stores {
                        values.extend_from_slice(self.series(sample, store));
                    }
                }
                DemandData {
                    n_samples: self.n_samples,
                    n_stores,
                    n_periods: self.n_periods,
                    values,
                    negatives: self.negatives,
                }
            }),
            // the values are already in (sample·S + store)·T + period order
            DataStores::AsSamples => (n_stores == 1).then(|| DemandData {
                n_samples: self.n_samples * self.n_stores,
                n_stores: 1,
                n_periods: self.n_periods,
                values: self.values.clone(),
                negatives: self.negatives,
            }),
        }
    }

    /// [`DemandData::load`], then [`DemandData::select`], the selection kept in the same cache;
    /// `Ok(None)` when the file cannot give the selection.
    pub fn load_selected(
        path: &Path,
        format: DataFormat,
        negative: NegativeDemand,
        stores: DataStores,
        n_stores: usize,
    ) -> Result<Option<Arc<DemandData>>, DataFileError> {
        let data = DemandData::load(path, format, negative)?;
        if stores == DataStores::All {
            return Ok((data.n_stores == n_stores).then_some(data));
        }
        let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
        let key = (
            path.to_path_buf(),
            format,
            negative,
            meta.len(),
            meta.modified().ok(),
        );
        let selected_key = (key, stores, n_stores);
        if let Some(data) = selected_cache()
            .lock()
            .ok()
            .and_then(|c| c.get(&selected_key).cloned())
        {
            return Ok(Some(data));
        }
        let Some(selected) = data.select(stores, n_stores).map(Arc::new) else {
            return Ok(None);
        };
        if let Ok(mut c) = selected_cache().lock() {
            c.insert(selected_key, Arc::clone(&selected));
        }
        Ok(Some(selected))
    }

    /// Negative cells read as zero (with [`NegativeDemand::Zero`]).
    pub fn negatives_zeroed(&self) -> usize {
        self.negatives
    }

    /// The series of one (sample, store), all periods.
    pub fn series(&self, sample: usize, store: usize) -> &[f32] {
        let start = (sample * self.n_stores + store) * self.n_periods;
        &self.values[start..start + self.n_periods]
    }

    /// Demand of (sample, store) in `period`; 0 past the last period of the file.
    pub fn value(&self, sample: usize, store: usize, period: usize) -> f32 {
        if period < self.n_periods {
            self.series(sample, store)[period]
        } else {
            0.0
        }
    }

    /// Mean and standard deviation (population) per store over `samples` × `periods`.
    pub fn store_moments(
        &self,
        samples: Range<usize>,
        periods: Range<usize>,
    ) -> (Vec<f64>, Vec<f64>) {
        let count = (samples.len() * periods.len()).max(1) as f64;
        let mut mean = vec![0.0f64; self.n_stores];
        let mut std = vec![0.0f64; self.n_stores];
        for store in 0..self.n_stores {
            let (mut sum, mut squares) = (0.0f64, 0.0f64);
            for sample in samples.clone() {
                for &x in &self.series(sample, store)[periods.clone()] {
                    sum += f64::from(x);
                    squares += f64::from(x) * f64::from(x);
                }
            }
            mean[store] = sum / count;
            std[store] = (squares / count - mean[store] * mean[store])
                .max(0.0)
                .sqrt();
        }
        (mean, std)
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> DataFileError {
    DataFileError {
        path: path.display().to_string(),
        line: None,
        message: format!("cannot be read: {e}"),
    }
}

/// The state of one read: the file, the rule for negative cells, and how many were zeroed.
struct Parser<'a> {
    path: &'a Path,
    negative: NegativeDemand,
    negatives: usize,
}

const LONG_HEADER: [&str; 4] = ["sample", "store", "period", "demand"];

impl Parser<'_> {
    fn error(&self, line: Option<u64>, message: impl Into<String>) -> DataFileError {
        DataFileError {
            path: self.path.display().to_string(),
            line,
            message: message.into(),
        }
    }

    fn csv_error(&self, e: &csv::Error) -> DataFileError {
        let line = e.position().map(|p| p.line());
        match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => self.error(
                line,
                format!(
                    "the row has {len} fields but the header has {expected_len}; every row \
                     needs one field per header column"
                ),
            ),
            csv::ErrorKind::Io(io) => self.error(line, format!("cannot be read: {io}")),
            _ => self.error(line, format!("is not valid CSV: {e}")),
        }
    }

    /// The next record into `record` and its line; `None` at the end of the file.
    fn next_record<R: std::io::Read>(
        &self,
        reader: &mut csv::Reader<R>,
        record: &mut csv::StringRecord,
    ) -> Result<Option<u64>, DataFileError> {
        match reader.read_record(record) {
            Ok(true) => Ok(Some(record.position().map_or(0, |p| p.line()))),
            Ok(false) => Ok(None),
            Err(e) => Err(self.csv_error(&e)),
        }
    }

    /// A sample, store or period index: a non-negative integer.
    fn index(&self, line: u64, column: &str, text: &str) -> Result<usize, DataFileError> {
        text.parse::<usize>().map_err(|_| {
            self.error(
                Some(line),
                format!("column `{column}`: `{text}` is not an index; allowed: an integer ≥ 0"),
            )
        })
    }

    /// A demand cell: a finite number, negative only when negatives are read as zero.
    fn demand(&mut self, line: u64, column: &str, text: &str) -> Result<f32, DataFileError> {
        let value = text
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                self.error(
                    Some(line),
                    format!(
                        "column `{column}`: `{text}` is not a number; allowed: a finite number ≥ 0"
                    ),
                )
            })?;
        if value < 0.0 {
            return match self.negative {
                NegativeDemand::Zero => {
                    self.negatives += 1;
                    Ok(0.0)
                }
                NegativeDemand::Error => Err(self.error(
                    Some(line),
                    format!(
                        "column `{column}`: {text} is negative; allowed: ≥ 0 (set \
                         demand.negative = \"zero\" to read returns as zero demand)"
                    ),
                )),
            };
        }
        Ok(value)
    }

    fn no_rows(&self) -> DataFileError {
        self.error(None, "has a header but no data rows")
    }

    fn read_long<R: std::io::Read>(
        &mut self,
        reader: &mut csv::Reader<R>,
        header: &[String],
    ) -> Result<DemandData, DataFileError> {
        if header.len() != LONG_HEADER.len() || header.iter().zip(LONG_HEADER).any(|(h, e)| h != e)
        {
            return Err(self.error(
                Some(1),
                format!(
                    "the header is `{}`; format = \"long\" needs `{}`",
                    header.join(","),
                    LONG_HEADER.join(",")
                ),
            ));
        }
        // (sample, store, period, line, value), sorted below
        let mut cells: Vec<(usize, usize, usize, u64, f32)> = Vec::new();
        let mut record = csv::StringRecord::new();
        while let Some(line) = self.next_record(reader, &mut record)? {
            let sample = self.index(line, "sample", &record[0])?;
            let store = self.index(line, "store", &record[1])?;
            let period = self.index(line, "period", &record[2])?;
            let value = self.demand(line, "demand", &record[3])?;
            cells.push((sample, store, period, line, value));
        }
        if cells.is_empty() {
            return Err(self.no_rows());
        }
        cells.sort_unstable_by_key(|c| (c.0, c.1, c.2));
        let n_samples = cells.last().map_or(0, |c| c.0 + 1);
        let n_stores = cells.iter().map(|c| c.1).max().unwrap_or(0) + 1;
        let n_periods = cells.iter().map(|c| c.2).max().unwrap_or(0) + 1;
        let keys: Vec<(usize, usize, usize, u64)> =
            cells.iter().map(|c| (c.0, c.1, c.2, c.3)).collect();
        self.check_dense(&keys, [n_samples, n_stores, n_periods], "cell")?;
        Ok(DemandData {
            n_samples,
            n_stores,
            n_periods,
            values: cells.into_iter().map(|c| c.4).collect(),
            negatives: self.negatives,
        })
    }

    fn read_wide<R: std::io::Read>(
        &mut self,
        reader: &mut csv::Reader<R>,
        header: &[String],
    ) -> Result<DemandData, DataFileError> {
        if header.len() < 3 || header[0] != "sample" || header[1] != "store" {
            return Err(self.error(
                Some(1),
                format!(
                    "the header is `{}`; format = \"wide\" needs `sample,store,` followed by one \
                     column per period (e.g. `sample,store,w000,w001`)",
                    header.join(",")
                ),
            ));
        }
        let n_periods = header.len() - 2;
        // (sample, store, line, index of the row's values), sorted below
        let mut rows: Vec<(usize, usize, usize, u64)> = Vec::new();
        let mut values: Vec<f32> = Vec::new();
        let mut record = csv::StringRecord::new();
        while let Some(line) = self.next_record(reader, &mut record)? {
            let sample = self.index(line, "sample", &record[0])?;
            let store = self.index(line, "store", &record[1])?;
            for (column, text) in header[2..].iter().zip(record.iter().skip(2)) {
                values.push(self.demand(line, column, text)?);
            }
            rows.push((sample, store, rows.len(), line));
        }
        if rows.is_empty() {
            return Err(self.no_rows());
        }
        rows.sort_unstable_by_key(|r| (r.0, r.1));
        let n_samples = rows.last().map_or(0, |r| r.0 + 1);
        let n_stores = rows.iter().map(|r| r.1).max().unwrap_or(0) + 1;
        let keys: Vec<(usize, usize, usize, u64)> =
            rows.iter().map(|r| (r.0, r.1, 0, r.3)).collect();
        self.check_dense(&keys, [n_samples, n_stores, 1], "row")?;
        let already_sorted = rows.iter().enumerate().all(|(i, r)| r.2 == i);
        if !already_sorted {
            let mut sorted = Vec::with_capacity(values.len());
            for r in &rows {
                sorted.extend_from_slice(&values[r.2 * n_periods..(r.2 + 1) * n_periods]);
            }
            values = sorted;
        }
        Ok(DemandData {
            n_samples,
            n_stores,
            n_periods,
            values,
            negatives: self.negatives,
        })
    }

    /// Sorted `(sample, store, period, line)` keys cover `0..dims` exactly once each: the first
    /// duplicate or gap is reported.
    fn check_dense(
        &self,
        keys: &[(usize, usize, usize, u64)],
        dims: [usize; 3],
        what: &str,
    ) -> Result<(), DataFileError> {
        let names = |k: (usize, usize, usize)| {
            if what == "row" {
                format!("sample {}, store {}", k.0, k.1)
            } else {
                format!("sample {}, store {}, period {}", k.0, k.1, k.2)
            }
        };
        for pair in keys.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if (a.0, a.1, a.2) == (b.0, b.1, b.2) {
                return Err(self.error(
                    Some(a.3.max(b.3)),
                    format!(
                        "{} appears twice (also on line {}); every {what} must appear once",
                        names((a.0, a.1, a.2)),
                        a.3.min(b.3)
                    ),
                ));
            }
        }
        let expected = dims[0].saturating_mul(dims[1]).saturating_mul(dims[2]);
        if keys.len() != expected {
            // the first index the sorted keys skip
            let mut missing = None;
            for (i, k) in keys.iter().enumerate() {
                let want = (i / (dims[1] * dims[2]), i / dims[2] % dims[1], i % dims[2]);
                if (k.0, k.1, k.2) != want {
                    missing = Some(want);
                    break;
                }
            }
            let missing = missing.map_or(String::new(), |m| format!("; {} is missing", names(m)));
            return Err(self.error(
                None,
                format!(
                    "has {} {what}s but {} samples × {} stores{} need {expected}{missing} \
                     (samples, stores and periods are numbered from 0 without gaps)",
                    keys.len(),
                    dims[0],
                    dims[1],
                    if what == "row" {
                        String::new()
                    } else {
                        format!(" × {} periods", dims[2])
                    },
                ),
            ));
        }
        Ok(())
    }
}
