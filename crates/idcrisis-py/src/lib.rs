//! `idcrisis._native`: the Python extension module over the idcrisis library.
//!
//! A thin layer: configs go to the library as TOML (`RunConfig::from_toml` parses and
//! `RunConfig::validate` checks them, so every message about a config is the library's),
//! training is `run::execute`, a finished run is reopened with `run::load_run`/`run::open`, and
//! sweeps and theory call the library's functions. The public Python API (`python/idcrisis`)
//! wraps this module; its type stubs are `python/idcrisis/_native.pyi`.
//!
//! Images cross the boundary as C-contiguous `float32` arrays shaped `[N, C, H, W]`, pixels in
//! [0, 1]. Every call that computes releases the GIL; training reacquires it briefly to check for
//! signals (Ctrl-C) and to call the progress callback. Library errors become Python exceptions in
//! [`to_py_err`], and a Rust panic becomes `idcrisis.InternalError` in [`guard`], never an abort.

use idcrisis::data;
use idcrisis::engine::Engine;
use idcrisis::eval::probe::Probe;
use idcrisis::experiment::config::RunConfig;
use idcrisis::experiment::inputs::Inputs;
use idcrisis::experiment::run::{self, RunOptions, RunResult};
use idcrisis::experiment::{pool, sweep};
use idcrisis::float::Float;
use idcrisis::nn::model::{Init, Net};
use idcrisis::theory::{cnn1, fcn1, ntk};
use idcrisis::{Error, Shape};
use numpy::{PyArray1, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex;
use std::time::Duration;

/// How often the thread that waits for training checks for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Errors: the one mapping from the library's errors to Python exceptions.

/// An exception class of `idcrisis.errors`, called with `msg`.
fn package_err(py: Python<'_>, class: &str, msg: String) -> PyErr {
    let made = py.import("idcrisis.errors").and_then(|m| m.getattr(class)).and_then(|c| c.call1((msg.clone(),)));
    match made {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// The Python exception for a library error. Bad configuration values and unparsable configs:
/// `ConfigError` (a `ValueError`); missing data: `MissingDataError` (a `FileNotFoundError`, with
/// the library's "fix:" line); malformed data or weights: `DataError` (a `ValueError`); an
/// interrupted run: `KeyboardInterrupt`; I/O: `OSError`; anything else: `IdcrisisError`.
fn to_py_err(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::InvalidValue { key, .. } if key == "data-dir" => package_err(py, "MissingDataError", msg),
        Error::InvalidValue { .. } | Error::Config { .. } => package_err(py, "ConfigError", msg),
        Error::MissingData { .. } => package_err(py, "MissingDataError", msg),
        Error::BadData { .. } | Error::Checksum { .. } | Error::Weights { .. } => package_err(py, "DataError", msg),
        Error::Interrupted { .. } => PyErr::new::<pyo3::exceptions::PyKeyboardInterrupt, _>(msg),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        Error::Io { .. } => PyOSError::new_err(msg),
        _ => package_err(py, "IdcrisisError", msg),
    }
}

/// Run `f` with the GIL released; a library error becomes its Python exception and a panic
/// becomes `idcrisis.InternalError` (the interpreter keeps running).
fn guard<T: Send>(py: Python<'_>, f: impl FnOnce() -> idcrisis::Result<T> + Send) -> PyResult<T> {
    match py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py_err(py, e)),
        Err(payload) => Err(panic_err(py, payload)),
    }
}

fn panic_err(py: Python<'_>, payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    package_err(py, "InternalError", format!("internal error in the idcrisis engine (a bug; please report it): {what}"))
}

/// Panics inside the engine, to test that a panic reaches Python as `InternalError`.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    guard(py, || -> idcrisis::Result<()> { panic!("deliberate panic from idcrisis._native._panic_for_test") })
}

// ---------------------------------------------------------------------------------------------
// Configs: Python values to TOML, parsed by the library.

/// A Python value as TOML. `None` is `Ok(None)` (the key is left unset).
fn to_toml(v: &Bound<'_, PyAny>, key: &str) -> PyResult<Option<toml::Value>> {
    let bad = |what: String| package_err(v.py(), "ConfigError", format!("invalid value for {key}: {what}"));
    if v.is_none() {
        return Ok(None);
    }
    if v.is_instance_of::<PyBool>() {
        return Ok(Some(toml::Value::Boolean(v.extract()?)));
    }
    if v.is_instance_of::<PyInt>() || v.hasattr("__index__")? && !v.is_instance_of::<PyFloat>() {
        return match v.extract::<i64>() {
            Ok(i) => Ok(Some(toml::Value::Integer(i))),
            Err(_) => Err(bad(format!("{} does not fit in 64 bits", v.str()?))),
        };
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Some(toml::Value::Float(v.extract()?)));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Some(toml::Value::String(v.extract()?)));
    }
    if v.hasattr("__fspath__")? {
        return Ok(Some(toml::Value::String(v.call_method0("__fspath__")?.extract()?)));
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return Ok(Some(toml::Value::Table(dict_to_table(d, key)?)));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() || v.hasattr("tolist")? {
        let items = if v.hasattr("tolist")? { v.call_method0("tolist")? } else { v.clone() };
        let mut out = Vec::new();
        for (i, item) in items.try_iter()?.enumerate() {
            match to_toml(&item?, &format!("{key}[{i}]"))? {
                Some(t) => out.push(t),
                None => return Err(bad("None inside a list".into())),
            }
        }
        return Ok(Some(toml::Value::Array(out)));
    }
    Err(bad(format!("a {} cannot be a config value", v.get_type().name()?)))
}

fn dict_to_table(d: &Bound<'_, PyDict>, prefix: &str) -> PyResult<toml::Table> {
    let mut t = toml::Table::new();
    for (k, v) in d.iter() {
        let k: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!("config keys must be strings, got {}", k.repr().map(|r| r.to_string()).unwrap_or_default()))
        })?;
        let full = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        if let Some(v) = to_toml(&v, &full)? {
            t.insert(k, v);
        }
    }
    Ok(t)
}

/// For every section of `config.toml` (`model`, `init`, `train`, ...), the keys it holds: read
/// off the library's own config with every optional key set, so that this list cannot drift.
fn section_keys() -> BTreeMap<String, Vec<String>> {
    let mut cfg = RunConfig::default();
    cfg.model.width = Some(1);
    cfg.init.from = Some(PathBuf::from("x"));
    let text = cfg.to_toml().unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    table.into_iter().filter_map(|(k, v)| v.as_table().map(|t| (k, t.keys().cloned().collect()))).collect()
}

/// The `RunConfig` a Python dict describes (the keys of `config.toml`, sections as dicts).
/// Parsed by the library, so an unknown key or a wrong type gets its message.
fn config_from_dict(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<RunConfig> {
    let text = config_toml(py, d)?;
    RunConfig::from_toml(&text, Path::new("<python arguments>")).map_err(|e| to_py_err(py, e))
}

/// The TOML text of a config dict (also sweep specs, whose values may be lists).
#[pyfunction]
fn config_toml(py: Python<'_>, config: &Bound<'_, PyDict>) -> PyResult<String> {
    toml::to_string(&dict_to_table(config, "")?).map_err(|e| package_err(py, "ConfigError", e.to_string()))
}

/// `section_keys` for Python: which keys each section of `config.toml` holds.
#[pyfunction]
#[pyo3(name = "section_keys")]
fn py_section_keys() -> BTreeMap<String, Vec<String>> {
    section_keys()
}

/// The library's defaults as `config.toml` text.
#[pyfunction]
fn default_config_toml() -> PyResult<String> {
    RunConfig::default().to_toml().map_err(|e| PyOSError::new_err(e.to_string()))
}

fn data_dir_or_default(d: Option<PathBuf>) -> PathBuf {
    data::resolve_data_dir(d.as_deref())
}

// ---------------------------------------------------------------------------------------------
// Arrays.

fn image_array<'py>(py: Python<'py>, data: Vec<f32>, n: usize, shape: Shape) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyArray1::from_vec(py, data).reshape([n, shape.channels, shape.height, shape.width])?.into_any())
}

fn to_f32<T: Float>(v: &[T]) -> Vec<f32> {
    v.iter().map(|x| Float::to_f64(*x) as f32).collect()
}

/// Check `x` is a float32 array shaped `[N, C, H, W]` with `(C, H, W) = shape`; returns N and its
/// values in C order.
fn images_in(x: &Bound<'_, PyAny>, shape: Shape) -> PyResult<(usize, Vec<f32>)> {
    let want = format!("[N, {}, {}, {}]", shape.channels, shape.height, shape.width);
    let arr = x.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a numpy float32 array shaped {want}, got a {}",
            x.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    let dt = arr.dtype();
    if !dt.is_equiv_to(&numpy::dtype::<f32>(x.py())) {
        return Err(PyTypeError::new_err(format!(
            "expected a float32 array shaped {want}, got dtype {} (convert with x.astype(numpy.float32))",
            dt.str()?
        )));
    }
    let s = arr.shape();
    if s.len() != 4 || s[1..] != [shape.channels, shape.height, shape.width] {
        return Err(pyo3::exceptions::PyValueError::new_err(format!("expected an array shaped {want}, got shape {s:?}")));
    }
    let a = x.cast::<numpy::PyArray4<f32>>()?.readonly();
    // `as_slice` also accepts Fortran order, whose memory order is not C's.
    let v = match a.as_slice() {
        Ok(s) if arr.is_c_contiguous() => s.to_vec(),
        _ => a.as_array().iter().copied().collect(),
    };
    Ok((s[0], v))
}

// ---------------------------------------------------------------------------------------------
// Runs.

/// A network of either precision.
enum AnyNet {
    F32(Net<f32>),
    F64(Net<f64>),
}

/// A finished run: its files, config, result, trained net and inputs.
#[pyclass(module = "idcrisis._native", frozen)]
struct Run {
    /// File name → bytes, as in the run directory.
    files: BTreeMap<String, Vec<u8>>,
    /// The directory it was read from, if it is kept on disk.
    path: Option<PathBuf>,
    cfg: RunConfig,
    net: AnyNet,
    inputs: Inputs,
    eng: Engine,
}

fn read_run(dir: &Path, data_dir: &Path, threads: Option<usize>, keep: bool) -> idcrisis::Result<Run> {
    let (mut cfg, weights) = run::load_run(dir)?;
    if let Some(t) = threads {
        cfg.threads = t;
    }
    cfg.validate()?;
    let mut files = BTreeMap::new();
    for f in run::RUN_FILES {
        let p = dir.join(f);
        if p.is_file() {
            files.insert(f.to_string(), idcrisis::fsutil::read(&p)?);
        }
    }
    if !files.contains_key("result.json") {
        return Err(Error::invalid("run-dir", format!("{} has no result.json; is it a finished run directory?", dir.display())));
    }
    let net = match cfg.dtype {
        idcrisis::experiment::config::Dtype::F32 => AnyNet::F32(run::open::<f32>(data_dir, &cfg, &weights)?.0),
        idcrisis::experiment::config::Dtype::F64 => AnyNet::F64(run::open::<f64>(data_dir, &cfg, &weights)?.0),
    };
    let inputs = idcrisis::experiment::inputs::load(data_dir, &cfg)?;
    let eng = Engine::new(cfg.threads)?.with_conv_algo(cfg.conv_algo);
    Ok(Run { files, path: keep.then(|| dir.to_path_buf()), cfg, net, inputs, eng })
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_run_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("idcrisis-py-{}-{nanos}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::SeqCst)))
}

/// Train the run `config` describes (see `idcrisis.train`). With `out`, the run directory stays
/// there; without, it is written to a temporary directory, read into memory and removed.
///
/// Training runs on a worker thread (with its engine's threads) while this, the calling
/// thread, waits with the GIL released. Every `SIGNAL_CHECK` it takes the GIL to check for
/// signals: Python runs signal handlers only on the main thread, so this is where Ctrl-C's
/// `KeyboardInterrupt` is raised. It then sets the stop flag, which the worker's progress callback
/// returns at the next step, and the library removes what the run had written. `on_step(step,
/// loss)` is called on this thread too, every `every` steps: the worker hands it the step and
/// waits for the answer, so an exception it raises stops training at that step (and is
/// re-raised).
#[pyfunction]
#[pyo3(signature = (config, out=None, data_dir=None, on_step=None, every=1))]
fn train(
    py: Python<'_>,
    config: &Bound<'_, PyDict>,
    out: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    on_step: Option<Py<PyAny>>,
    every: u64,
) -> PyResult<Run> {
    let cfg = config_from_dict(py, config)?;
    let data_dir = data_dir_or_default(data_dir);
    let keep = out.is_some();
    let dir = out.unwrap_or_else(temp_run_dir);
    let every = every.max(1);
    let report = on_step.is_some();
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::channel::<(u64, f64)>();
    let rx = Mutex::new(rx);
    let (ack_tx, ack_rx) = std::sync::mpsc::channel::<bool>();
    let mut pending: Option<PyErr> = None;
    let outcome = std::thread::scope(|s| {
        let (cfg, data_dir, dir, stop) = (&cfg, &data_dir, &dir, &stop);
        let worker = s.spawn(move || {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                // Owns the queue's sender: dropped when training ends, which ends the wait below.
                let mut progress = move |step: u64, loss: f64| {
                    if report && step.is_multiple_of(every) && tx.send((step, loss)).is_ok() && !ack_rx.recv().unwrap_or(false) {
                        return false;
                    }
                    !stop.load(Ordering::Relaxed)
                };
                let r = run::execute(cfg, RunOptions { data_dir: data_dir.clone(), out: dir.clone(), progress: &mut progress });
                let opened = r.and_then(|_| read_run(dir, data_dir, None, keep));
                if !keep {
                    let _ = std::fs::remove_dir_all(dir);
                }
                opened
            }))
        });
        loop {
            let msg = py.detach(|| rx.lock().map(|r| r.recv_timeout(SIGNAL_CHECK)).unwrap_or(Err(RecvTimeoutError::Disconnected)));
            let (r, answer) = match msg {
                Ok((step, loss)) => {
                    let r = match (&on_step, &pending) {
                        (Some(f), None) => f.call1(py, (step, loss)).map(|_| ()),
                        _ => Ok(()),
                    };
                    (r, true)
                }
                Err(RecvTimeoutError::Timeout) => (Ok(()), false),
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Err(e) = r.and_then(|()| py.check_signals()) {
                stop.store(true, Ordering::Relaxed);
                pending.get_or_insert(e);
            }
            if answer {
                let _ = ack_tx.send(pending.is_none());
            }
        }
        py.detach(|| worker.join())
    });
    match outcome {
        // The callback's exception (KeyboardInterrupt from Ctrl-C) is what the caller sees.
        _ if pending.is_some() => Err(pending.take().expect("checked")),
        Ok(Ok(Ok(run))) => Ok(run),
        Ok(Ok(Err(e))) => Err(to_py_err(py, e)),
        Ok(Err(payload)) | Err(payload) => Err(panic_err(py, payload)),
    }
}

/// Open a run directory written by `idcrisis train`, a sweep cell, or `Run.save`.
#[pyfunction]
#[pyo3(signature = (path, data_dir=None, threads=None))]
fn load_run(py: Python<'_>, path: PathBuf, data_dir: Option<PathBuf>, threads: Option<i64>) -> PyResult<Run> {
    let data_dir = data_dir_or_default(data_dir);
    let threads = match threads {
        None => None,
        Some(t) => Some(
            usize::try_from(t)
                .map_err(|_| to_py_err(py, Error::invalid("threads", format!("{t} must be 0 (all cores) or a positive count"))))?,
        ),
    };
    if !path.exists() {
        return Err(PyFileNotFoundError::new_err(format!("{}: no such run directory", path.display())));
    }
    guard(py, || read_run(&path, &data_dir, threads, true))
}

impl Run {
    fn result(&self) -> idcrisis::Result<RunResult> {
        let bytes = self.files.get("result.json").ok_or_else(|| Error::Other("run has no result.json".into()))?;
        serde_json::from_slice(bytes).map_err(|e| Error::bad_data("result.json", e.to_string()))
    }

    fn shape(&self) -> Shape {
        self.inputs.shape
    }

    fn predict_vec(&self, x: &[f32], n: usize, batch: usize) -> Vec<f32> {
        match &self.net {
            AnyNet::F32(net) => net.predict(&self.eng, x, n, batch),
            AnyNet::F64(net) => {
                let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                to_f32(&net.predict(&self.eng, &xs, n, batch))
            }
        }
    }

    fn hidden_vec<T: Float>(&self, net: &Net<T>, x: &[f32], n: usize) -> Vec<(Vec<usize>, Vec<f32>)> {
        let xs: Vec<T> = x.iter().map(|&v| T::from_f64(v as f64)).collect();
        let mut ws = net.workspace(n, true);
        net.forward(&self.eng, &mut ws, &xs, n);
        let s = self.shape();
        (1..=net.layers.len())
            .map(|i| {
                let a = net.activation_chw(&self.eng, &ws, i);
                let per = net.layers[i - 1].out_len();
                let dims = match net.cfg.arch {
                    idcrisis::nn::model::Arch::Cnn => vec![n, per / s.hw(), s.height, s.width],
                    idcrisis::nn::model::Arch::Fcn if i == net.layers.len() => vec![n, s.channels, s.height, s.width],
                    idcrisis::nn::model::Arch::Fcn => vec![n, per],
                };
                (dims, to_f32(&a[..n * per]))
            })
            .collect()
    }
}

fn probe_images(probes: &[Probe]) -> Vec<f32> {
    probes.iter().flat_map(|p| p.image.iter().copied()).collect()
}

#[pymethods]
impl Run {
    /// The run directory on disk, or None for a run kept only in memory.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    /// The config as run (`config.toml`), as JSON text.
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.cfg).map_err(|e| PyOSError::new_err(e.to_string()))
    }

    /// `result.json` as text.
    fn result_json(&self) -> String {
        String::from_utf8_lossy(self.files.get("result.json").map(|v| v.as_slice()).unwrap_or(b"{}")).into_owned()
    }

    /// The loss before each update, then at the final weights (`loss.csv`), float64 `[steps + 1]`.
    fn losses<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let text = String::from_utf8_lossy(self.files.get("loss.csv").map(|v| v.as_slice()).unwrap_or(b""));
        let mut v = Vec::new();
        for line in text.lines().skip(1) {
            let l = line.split(',').nth(1).unwrap_or("nan");
            v.push(l.parse::<f64>().unwrap_or(f64::NAN));
        }
        Ok(PyArray1::from_vec(py, v))
    }

    /// `(C, H, W)` of the model's images.
    fn shape_chw(&self) -> (usize, usize, usize) {
        let s = self.shape();
        (s.channels, s.height, s.width)
    }

    /// Probe names, in probe order.
    fn probe_names(&self) -> Vec<String> {
        self.inputs.probes.iter().map(|p| p.name.clone()).collect()
    }

    /// Probe categories, in probe order.
    fn probe_categories(&self) -> Vec<String> {
        self.inputs.probes.iter().map(|p| p.category.name().to_string()).collect()
    }

    /// The probes, float32 `[P, C, H, W]`.
    fn probe_inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        image_array(py, probe_images(&self.inputs.probes), self.inputs.probes.len(), self.shape())
    }

    /// The training image, float32 `[1, C, H, W]`.
    fn train_image<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        image_array(py, self.inputs.train.clone(), 1, self.shape())
    }

    /// Outputs on the training image then every probe, float32 `[1 + P, C, H, W]`, computed as
    /// the run's evaluation computed them.
    fn outputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let n = self.inputs.probes.len() + 1;
        let flat = guard(py, || {
            let o = match &self.net {
                AnyNet::F32(net) => run::outputs(&self.eng, net, &self.inputs.train, &self.inputs.probes),
                AnyNet::F64(net) => run::outputs(&self.eng, net, &self.inputs.train, &self.inputs.probes),
            };
            Ok(o.concat())
        })?;
        image_array(py, flat, n, self.shape())
    }

    /// The trained (or, with `initial`, the initial) weights: name → array in PyTorch's layout
    /// (`layers.{i}.weight` `[C_out, C_in, k, k]` or `[out, in]`, `layers.{i}.bias`), in the
    /// run's dtype (float32, or float64 for `dtype = "f64"` runs).
    #[pyo3(signature = (initial=false))]
    fn weights<'py>(&self, py: Python<'py>, initial: bool) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let file = if initial { "init.safetensors" } else { "weights.safetensors" };
        let bytes = self.files.get(file).ok_or_else(|| package_err(py, "DataError", format!("the run has no {file}")))?;
        let mut net = Net::<f64>::new(&self.cfg.model, self.shape()).map_err(|e| to_py_err(py, e))?;
        net.load_safetensors(bytes, Path::new(file)).map_err(|e| to_py_err(py, e))?;
        let f64s = matches!(self.net, AnyNet::F64(_));
        for (name, shape, r) in net.tensors() {
            let vals = &net.params[r];
            let a = if f64s {
                PyArray1::from_vec(py, vals.to_vec()).reshape(shape)?.into_any()
            } else {
                PyArray1::from_vec(py, vals.iter().map(|&v| v as f32).collect::<Vec<f32>>()).reshape(shape)?.into_any()
            };
            d.set_item(name, a)?;
        }
        Ok(d)
    }

    /// Outputs for `x`, a float32 array `[N, C, H, W]`, in batches of `batch`: float32
    /// `[N, C, H, W]`.
    #[pyo3(signature = (x, batch=100))]
    fn predict<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>, batch: usize) -> PyResult<Bound<'py, PyAny>> {
        let (n, xs) = images_in(x, self.shape())?;
        let y = guard(py, || Ok(self.predict_vec(&xs, n, batch.max(1))))?;
        image_array(py, y, n, self.shape())
    }

    /// Every layer's output for `x` (float32 `[N, C, H, W]`): a list of float32 arrays, one
    /// per weight layer, after its activation (the last is the network's output). CNN layers
    /// `[N, channels, H, W]`; FCN hidden layers `[N, width]`.
    fn hidden<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let (n, xs) = images_in(x, self.shape())?;
        let layers = guard(py, || {
            Ok(match &self.net {
                AnyNet::F32(net) => self.hidden_vec(net, &xs, n),
                AnyNet::F64(net) => self.hidden_vec(net, &xs, n),
            })
        })?;
        let out = PyList::empty(py);
        for (dims, v) in layers {
            out.append(PyArray1::from_vec(py, v).reshape(dims)?)?;
        }
        Ok(out)
    }

    /// Write the run directory (the same files `idcrisis train` writes) into `path`. Refuses a
    /// directory that already holds a finished run.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        guard(py, || {
            if path.join("result.json").exists() {
                return Err(Error::invalid("out", format!("{} already holds a finished run; choose another path", path.display())));
            }
            std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            // result.json last: a directory with it is complete.
            for (name, bytes) in self.files.iter().filter(|(n, _)| n.as_str() != "result.json") {
                idcrisis::fsutil::write_atomic(&path.join(name), bytes)?;
            }
            if let Some(r) = self.files.get("result.json") {
                idcrisis::fsutil::write_atomic(&path.join("result.json"), r)?;
            }
            Ok(())
        })
    }

    /// The bytes of one file of the run directory (e.g. `predictions.png`).
    fn file<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        match self.files.get(name) {
            Some(b) => Ok(pyo3::types::PyBytes::new(py, b)),
            None => Err(pyo3::exceptions::PyKeyError::new_err(format!(
                "the run has no {name}; it has {:?}",
                self.files.keys().collect::<Vec<_>>()
            ))),
        }
    }

    /// Status, steps and losses, from `result.json`.
    fn status(&self, py: Python<'_>) -> PyResult<String> {
        self.result().map(|r| r.status.as_str().to_string()).map_err(|e| to_py_err(py, e))
    }
}

// ---------------------------------------------------------------------------------------------
// Sweeps.

/// Plan the sweep whose TOML text is `text` into `dir` (see `idcrisis.sweep.plan`). Returns the
/// number of cells and whether a new plan was written.
#[pyfunction]
#[pyo3(signature = (text, dir, force=false, exe=None, data_dir=None))]
fn sweep_plan(
    py: Python<'_>,
    text: String,
    dir: PathBuf,
    force: bool,
    exe: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> PyResult<(usize, bool)> {
    let data_dir = data_dir_or_default(data_dir);
    let exe = exe.unwrap_or_else(|| PathBuf::from("idcrisis"));
    let o =
        guard(py, || sweep::plan_text(&text, Path::new("<sweep spec>"), &dir, force, &sweep::SlurmOptions::default(), &exe, &data_dir))?;
    Ok(match o {
        sweep::PlanOutcome::Written(n) => (n, true),
        sweep::PlanOutcome::Unchanged(n) => (n, false),
    })
}

/// `(todo, already_done, failed)` of `sweep_run`; `failed` holds `(index, message)`.
type SweepRunReport = (usize, usize, Vec<(usize, String)>);

/// Run every cell of the sweep in `dir` not yet done on a local pool (up to `group` cells of one
/// architecture trained together); returns `(todo,
/// already_done, [(index, message)] of failed cells)`.
#[pyfunction]
#[pyo3(signature = (dir, jobs=None, threads_per_worker=None, retry_failed=false, data_dir=None, group=None))]
fn sweep_run(
    py: Python<'_>,
    dir: PathBuf,
    jobs: Option<usize>,
    threads_per_worker: Option<usize>,
    retry_failed: bool,
    data_dir: Option<PathBuf>,
    group: Option<usize>,
) -> PyResult<SweepRunReport> {
    let data_dir = data_dir_or_default(data_dir);
    let opts = pool::PoolOptions { jobs, threads_per_worker, retry_failed, group };
    let r = guard(py, || pool::run(&dir, &data_dir, &opts, &mut |_| {}, &|_| {}))?;
    Ok((r.todo, r.already_done, r.failed))
}

/// Status of a sweep as JSON text (`total`, `done`, `failed`, `missing`, `failed_indices`,
/// `not_done`).
#[pyfunction]
fn sweep_status(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    let s = guard(py, || sweep::status(&dir))?;
    serde_json::to_string(&s).map_err(|e| PyOSError::new_err(e.to_string()))
}

/// `(columns, rows as JSON text, skipped)` of every done cell, as `idcrisis sweep collect`.
#[pyfunction]
fn sweep_collect(py: Python<'_>, dir: PathBuf) -> PyResult<(Vec<String>, String, usize)> {
    let (cols, rows, skipped) = guard(py, || sweep::collect(&dir))?;
    Ok((cols, serde_json::to_string(&rows).map_err(|e| PyOSError::new_err(e.to_string()))?, skipped))
}

/// The directory of cell `index` of the sweep in `dir`.
#[pyfunction]
fn sweep_cell_dir(py: Python<'_>, dir: PathBuf, index: usize) -> PyResult<PathBuf> {
    guard(py, || {
        let plan = sweep::load_plan(&dir)?;
        let c = plan.get(index).ok_or_else(|| Error::invalid("index", format!("{index} is not a cell of the plan (0..{})", plan.len())))?;
        Ok(sweep::cell_dir(&dir, c))
    })
}

// ---------------------------------------------------------------------------------------------
// Theory.

fn parse_enum<T: serde::de::DeserializeOwned>(py: Python<'_>, key: &str, v: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(v.to_string()))
        .map_err(|e| to_py_err(py, Error::invalid(key, format!("{v:?}: {}", e.to_string().split(" at line").next().unwrap_or_default()))))
}

fn image_spec(py: Python<'_>, s: &str) -> PyResult<data::ImageSpec> {
    s.parse::<data::ImageSpec>().map_err(|e| to_py_err(py, e))
}

/// Theorem 1 (`idcrisis theory fcn1`): `(report JSON, probes, predicted, trained, shape)`.
#[pyfunction]
#[pyo3(signature = (train_image, gray, init, init_scale, seed, steps, rho, threads, data_dir=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn theory_fcn1<'py>(
    py: Python<'py>,
    train_image: &str,
    gray: Option<usize>,
    init: &str,
    init_scale: f64,
    seed: u64,
    steps: u64,
    rho: Vec<f64>,
    threads: usize,
    data_dir: Option<PathBuf>,
) -> PyResult<(String, Vec<String>, Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let spec = image_spec(py, train_image)?;
    let scheme: Init = parse_enum(py, "init", init)?;
    let data_dir = data_dir_or_default(data_dir);
    let o = guard(py, || {
        let eng = Engine::new(threads)?;
        fcn1::run(&eng, &data_dir, &spec, gray, scheme, init_scale, seed, steps, &rho)
    })?;
    let n = o.probes.len();
    let f = |v: &[Vec<f64>]| v.iter().flat_map(|x| x.iter().map(|&a| a as f32)).collect::<Vec<f32>>();
    Ok((
        serde_json::to_string(&o.report).map_err(|e| PyOSError::new_err(e.to_string()))?,
        o.probes.iter().map(|p| p.name.clone()).collect(),
        image_array(py, probe_images(&o.probes), n, o.shape)?,
        image_array(py, f(&o.predicted), n, o.shape)?,
        image_array(py, f(&o.trained), n, o.shape)?,
    ))
}

/// The one-layer CNN (`idcrisis theory cnn1`): `(rows JSON, probe names, probes)`.
#[pyfunction]
#[pyo3(signature = (train_image, gray, kernels, init, init_scale, seed, steps, rho, threads, data_dir=None))]
#[allow(clippy::too_many_arguments)]
fn theory_cnn1<'py>(
    py: Python<'py>,
    train_image: &str,
    gray: Option<usize>,
    kernels: Vec<usize>,
    init: &str,
    init_scale: f64,
    seed: u64,
    steps: u64,
    rho: Vec<f64>,
    threads: usize,
    data_dir: Option<PathBuf>,
) -> PyResult<(String, Vec<String>, Bound<'py, PyAny>)> {
    let spec = image_spec(py, train_image)?;
    let scheme: Init = parse_enum(py, "init", init)?;
    let data_dir = data_dir_or_default(data_dir);
    let (o, shape) = guard(py, || {
        let eng = Engine::new(threads)?;
        let shape = data::load_image(&data_dir, &spec, gray)?.0;
        Ok((cnn1::run(&eng, &data_dir, &spec, gray, &kernels, scheme, init_scale, seed, steps, &rho)?, shape))
    })?;
    Ok((
        serde_json::to_string(&o.rows).map_err(|e| PyOSError::new_err(e.to_string()))?,
        o.probes.iter().map(|p| p.name.clone()).collect(),
        image_array(py, probe_images(&o.probes), o.probes.len(), shape)?,
    ))
}

/// NTK / NNGP predictions (`idcrisis theory ntk` without files): `(config JSON, probe names,
/// categories, probes, ntk, nngp, shape)` with the predictions of the depth-`depth` network.
#[pyfunction]
#[pyo3(signature = (train_image, gray, arch, depth, act, kernel, weight_var, bias_var, rho, threads, data_dir=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn theory_ntk<'py>(
    py: Python<'py>,
    train_image: &str,
    gray: Option<usize>,
    arch: &str,
    depth: usize,
    act: &str,
    kernel: usize,
    weight_var: f64,
    bias_var: f64,
    rho: Vec<f64>,
    threads: usize,
    data_dir: Option<PathBuf>,
) -> PyResult<(String, Vec<String>, Vec<String>, Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let spec = image_spec(py, train_image)?;
    let arch = parse_enum(py, "arch", arch)?;
    let act = parse_enum(py, "act", act)?;
    let data_dir = data_dir_or_default(data_dir);
    let (cfg, probes, pred, shape) = guard(py, || {
        let eng = Engine::new(threads)?;
        let (shape, x) = idcrisis::theory::train_image_f64(&data_dir, &spec, gray)?;
        idcrisis::theory::one_channel(shape, &spec)?;
        let cfg = ntk::NtkConfig { arch, depth, act, kernel, weight_var, bias_var, height: shape.height, width: shape.width };
        cfg.validate()?;
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let probes = idcrisis::eval::probe::probes_for(&data_dir, &spec, shape, gray, &x32, &rho)?;
        let inputs: Vec<Vec<f64>> = probes.iter().map(|p| p.image.iter().map(|&v| v as f64).collect()).collect();
        let pred = eng.install(|| ntk::predict(&cfg, &x, &inputs))?;
        Ok((cfg, probes, pred, shape))
    })?;
    let n = probes.len();
    let l = depth - 1;
    let f = |v: &[Vec<f64>]| v.iter().flat_map(|x| x.iter().map(|&a| a as f32)).collect::<Vec<f32>>();
    Ok((
        serde_json::to_string(&cfg).map_err(|e| PyOSError::new_err(e.to_string()))?,
        probes.iter().map(|p| p.name.clone()).collect(),
        probes.iter().map(|p| p.category.name().to_string()).collect(),
        image_array(py, probe_images(&probes), n, shape)?,
        image_array(py, f(&pred.ntk[l]), n, shape)?,
        image_array(py, f(&pred.nngp[l]), n, shape)?,
    ))
}

/// The train image of a run config (for figures): float32 `[1, C, H, W]`.
#[pyfunction]
#[pyo3(signature = (train_image, gray=None, data_dir=None))]
fn load_image<'py>(py: Python<'py>, train_image: &str, gray: Option<usize>, data_dir: Option<PathBuf>) -> PyResult<Bound<'py, PyAny>> {
    let spec = image_spec(py, train_image)?;
    let data_dir = data_dir_or_default(data_dir);
    let (shape, v) = guard(py, || data::load_image(&data_dir, &spec, gray))?;
    image_array(py, v, 1, shape)
}

/// The first `limit` images of a data set split (`"mnist:test"`), float32 `[N, C, H, W]`.
#[pyfunction]
#[pyo3(signature = (dataset, limit=0, gray=None, data_dir=None))]
fn load_dataset<'py>(
    py: Python<'py>,
    dataset: &str,
    limit: usize,
    gray: Option<usize>,
    data_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    let data_dir = data_dir_or_default(data_dir);
    let ts = idcrisis::experiment::config::TrainSet { data: dataset.to_string(), limit: 0, indices: vec![], batch: 1, epochs: 1 };
    let (probes, shape) = guard(py, || {
        let (d, split) = ts.source()?;
        let probes = idcrisis::eval::probe::dataset_probes(&data_dir, d, split, gray, if limit == 0 { usize::MAX } else { limit })?;
        let shape = data::load_images(&data_dir, d, split)?.view(gray)?.shape();
        Ok((probes, shape))
    })?;
    image_array(py, probe_images(&probes), probes.len(), shape)
}

/// The data directory the package reads (`data_dir` argument, else `$IDCRISIS_DATA`, else the
/// user cache directory + `/idcrisis`).
#[pyfunction]
#[pyo3(signature = (data_dir=None))]
fn resolve_data_dir(data_dir: Option<PathBuf>) -> PathBuf {
    data_dir_or_default(data_dir)
}

/// The idcrisis library version.
#[pyfunction]
fn version() -> String {
    run::Versions::current().idcrisis
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Run>()?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(load_run, m)?)?;
    m.add_function(wrap_pyfunction!(config_toml, m)?)?;
    m.add_function(wrap_pyfunction!(py_section_keys, m)?)?;
    m.add_function(wrap_pyfunction!(default_config_toml, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_plan, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_run, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_status, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_collect, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_cell_dir, m)?)?;
    m.add_function(wrap_pyfunction!(theory_fcn1, m)?)?;
    m.add_function(wrap_pyfunction!(theory_cnn1, m)?)?;
    m.add_function(wrap_pyfunction!(theory_ntk, m)?)?;
    m.add_function(wrap_pyfunction!(load_image, m)?)?;
    m.add_function(wrap_pyfunction!(load_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_data_dir, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
