//! Sweeps: planning, bad input, crash safety under kill -9, and two concurrent runners.

mod common;

use common::{bin, run};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

fn tempdir(tag: &str) -> common::TestDir {
    common::tempdir("sweep", tag)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A grid of `seeds × 2` tiny cells taking about `steps` updates each.
fn write_grid(dir: &Path, seeds: usize, steps: usize) -> PathBuf {
    let f = dir.join("grid.toml");
    let seeds: Vec<String> = (0..seeds).map(|i| i.to_string()).collect();
    std::fs::write(
        &f,
        format!(
            "seed = [{}]\nthreads = 1\nrho = [0.5]\n[model]\narch = \"cnn\"\ndepth = [1, 2]\nchannels = 4\nkernel = 3\n[train]\nsteps = {steps}\ntol = 0.0\nlr = 1e-3\n",
            seeds.join(", ")
        ),
    )
    .unwrap();
    f
}

fn collect_csv(dir: &Path) -> Vec<String> {
    let o = run(&["sweep", "collect", s(dir), "--format", "csv"]);
    assert!(o.status.success(), "{}", err(&o));
    String::from_utf8(o.stdout).unwrap().lines().map(String::from).collect()
}

#[test]
fn plan_is_stable_and_refuses_a_different_file() {
    let t = tempdir("plan");
    let f = write_grid(&t, 3, 5);
    let d = t.join("sw");
    let o = run(&["sweep", "plan", s(&f), "--out", s(&d), "--max-parallel", "4", "--cpus-per-task", "1", "--sbatch=--partition=debug"]);
    assert!(o.status.success(), "{}", err(&o));
    let plan = std::fs::read_to_string(d.join("plan.jsonl")).unwrap();
    assert_eq!(plan.lines().count(), 6);
    let sb = std::fs::read_to_string(d.join("slurm.sbatch")).unwrap();
    assert!(sb.contains("#SBATCH --array=0-5%4") && sb.contains("--cpus-per-task=1") && sb.contains("sweep run-cell"), "{sb}");
    assert!(sb.contains("#SBATCH --partition=debug"), "{sb}");
    // Same file again: a no-op, same bytes.
    let o = run(&["sweep", "plan", s(&f), "--out", s(&d)]);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
    assert_eq!(std::fs::read_to_string(d.join("plan.jsonl")).unwrap(), plan);
    // A different file is refused, then accepted with --force; done cells survive.
    let o = run(&["sweep", "run-cell", s(&d), "--index", "0"]);
    assert!(o.status.success(), "{}", err(&o));
    let g = write_grid(&t, 4, 5);
    let o = run(&["sweep", "plan", s(&g), "--out", s(&d)]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(err(&o).contains("--force"));
    let o = run(&["sweep", "plan", s(&g), "--out", s(&d), "--force"]);
    assert!(o.status.success(), "{}", err(&o));
    let st = run(&["sweep", "status", s(&d), "--format", "json"]);
    let j: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(j["total"], 8);
    assert_eq!(j["done"], 1, "the cell done before re-planning is kept (same config → same id)");
}

#[test]
fn bad_sweep_files_name_the_key_and_write_nothing() {
    let t = tempdir("bad");
    let cases = [
        ("unknown.toml", "seed = [1, 2]\n[model]\ndepht = [3]\n", "depht"),
        ("empty.toml", "seed = []\n", "empty list"),
        ("type.toml", "[model]\ndepth = [\"five\", 3]\n", "depth"),
        ("huge.toml", "seed = [0,1,2,3,4,5,6,7,8,9]\n[model]\ndepth = [1,2,3,4,5,6,7,8,9,10]\nchannels = [1,2,3,4,5,6,7,8,9,10]\nkernel = [1,3,5,7,9,11,13,15,17,19]\nwidth = [1,2,3,4,5,6,7,8,9,10,11]\n", "--force"),
        ("zip.toml", "[zip]\nseed = [1, 2]\ntrain.lr = [0.1]\n", "zip key"),
        ("invalid.toml", "[model]\nkernel = [3, 4]\n", "--kernel"),
    ];
    for (name, text, needle) in cases {
        let f = t.join(name);
        std::fs::write(&f, text).unwrap();
        let d = t.join(format!("out-{name}"));
        let o = run(&["sweep", "plan", s(&f), "--out", s(&d)]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", err(&o));
        assert!(err(&o).contains(needle), "{name}: {:?} lacks {needle:?}", err(&o));
        assert!(!d.exists(), "{name}: something was written");
    }
    // run-cell with an index out of range, and without any index.
    let f = write_grid(&t, 1, 2);
    let d = t.join("ok");
    assert!(run(&["sweep", "plan", s(&f), "--out", s(&d)]).status.success());
    let o = run(&["sweep", "run-cell", s(&d), "--index", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("--index") && err(&o).contains("out of range"), "{}", err(&o));
    let o = bin().args(["sweep", "run-cell", s(&d)]).env_remove("SLURM_ARRAY_TASK_ID").env_remove("JOB_COMPLETION_INDEX").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    // The index can come from Kubernetes' JOB_COMPLETION_INDEX.
    let o = bin().args(["sweep", "run-cell", s(&d)]).env_remove("SLURM_ARRAY_TASK_ID").env("JOB_COMPLETION_INDEX", "1").output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("cell 1 done"));
}

fn done_stamps(d: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d.join("cells")).unwrap().flatten() {
        let done = e.path().join("DONE");
        if done.is_file() {
            let r = e.path().join("result.json");
            v.push((r.clone(), std::fs::metadata(&r).unwrap().modified().unwrap()));
        }
    }
    v
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    let t = tempdir("kill");
    let f = write_grid(&t, 6, 3000);
    let d = t.join("sw");
    assert!(run(&["sweep", "plan", s(&f), "--out", s(&d)]).status.success());
    // Kill after varying delays; every finished cell must survive untouched.
    let mut seen: Vec<(PathBuf, std::time::SystemTime)> = Vec::new();
    let mut done_after_round = Vec::new();
    // Fixed delays first; on a slow or loaded machine, where no cell may finish that soon, the
    // delays then grow until a kill lands in a partly done grid.
    let mut delays = vec![250u64, 600, 90, 420];
    let mut round = 0;
    while round < delays.len() {
        let ms = delays[round];
        let mut child = bin().args(["sweep", "run", s(&d), "-j", "2", "-q"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms + 37 * round as u64));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Finished cells from earlier rounds are unchanged.
        for (p, m) in &seen {
            assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *m, "{} was recomputed", p.display());
        }
        seen = done_stamps(&d);
        done_after_round.push(seen.len());
        if round == 0 {
            assert!(seen.len() < 12, "the first kill came after the grid finished: the test proves nothing");
        }
        // Only complete cells are ever reported.
        let rows = collect_csv(&d);
        assert_eq!(rows.len() - 1, seen.len());
        let mixture = done_after_round.iter().any(|&n| n > 0 && n < 12);
        if round + 1 == delays.len() && !mixture && seen.len() < 12 && delays.len() < 12 {
            delays.push(1000 << (delays.len() - 4));
        }
        round += 1;
    }
    println!("done after each kill: {done_after_round:?}");
    // A kill must have interrupted a sweep that had got somewhere: some round ended with some
    // cells done and some not, so both "finished cells survive" and "the rest still runs" were
    // tested on a real mixture.
    assert!(
        done_after_round.iter().any(|&n| n > 0 && n < 12),
        "no kill left a partly done grid (done after each round: {done_after_round:?}): the test proves nothing"
    );
    let o = run(&["sweep", "run", s(&d), "-j", "2", "-q"]);
    assert!(o.status.success(), "{}", err(&o));
    for (p, m) in &seen {
        assert_eq!(std::fs::metadata(p).unwrap().modified().unwrap(), *m, "{} was recomputed", p.display());
    }
    let rows = collect_csv(&d);
    assert_eq!(rows.len(), 1 + 12, "header + every cell");
    let ids: BTreeSet<&str> = rows[1..].iter().map(|r| r.split(',').nth(1).unwrap()).collect();
    assert_eq!(ids.len(), 12, "every row exactly once");
    let st: serde_json::Value = serde_json::from_slice(&run(&["sweep", "status", s(&d), "--format", "json"]).stdout).unwrap();
    assert_eq!(st["done"], 12);
    // No temporary files anywhere.
    for e in std::fs::read_dir(d.join("cells")).unwrap().flatten() {
        if e.path().is_dir() {
            for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                assert!(!f.file_name().to_string_lossy().ends_with(".tmp"), "{:?}", f.path());
            }
        }
    }
}

/// Which runner ran each done cell, and which file it wrote: `cell id → (data dir recorded in
/// result.json, inode of result.json)`. Cells whose result cannot be read right now are left out.
fn who_ran(d: &Path) -> BTreeMap<String, (String, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(d.join("cells")).into_iter().flatten().flatten() {
        let (done, r) = (e.path().join("DONE"), e.path().join("result.json"));
        if !done.is_file() {
            continue;
        }
        let (Ok(meta), Ok(bytes)) = (std::fs::metadata(&r), std::fs::read(&r)) else { continue };
        let Ok(j) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let data = j["data_dir"].as_str().unwrap_or("?").to_string();
        m.insert(e.file_name().to_string_lossy().into_owned(), (data, meta.ino()));
    }
    m
}

#[test]
fn two_runners_on_one_directory_finish_cleanly() {
    let t = tempdir("two");
    let f = write_grid(&t, 5, 150);
    let d = t.join("sw");
    assert!(run(&["sweep", "plan", s(&f), "--out", s(&d)]).status.success());
    let plan = std::fs::read_to_string(d.join("plan.jsonl")).unwrap();
    let ids: BTreeSet<String> =
        plan.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 10);
    // Each runner reads the data through its own path (a symlink), which every result.json it
    // writes records: that says which runner ran which cell.
    let data = std::fs::canonicalize(common::data_dir()).unwrap();
    let (da, db) = (t.join("data-a"), t.join("data-b"));
    std::os::unix::fs::symlink(&data, &da).unwrap();
    std::os::unix::fs::symlink(&data, &db).unwrap();
    let runner = |dd: &Path| {
        bin()
            .args(["sweep", "run", s(&d), "-j", "1", "-q"])
            .env("IDCRISIS_DATA", dd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let start = Instant::now();
    let (a, b) = (runner(&da), runner(&db));
    // Watch the cells while they run: the first runner and result file seen for each done cell.
    // A cell run a second time (by either runner) would get a new result.json (a new inode),
    // and one run by both would show both data paths.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let first_seen = std::thread::scope(|sc| {
        let watcher = sc.spawn(|| {
            let mut first: BTreeMap<String, (String, u64)> = BTreeMap::new();
            loop {
                let last = stop.load(std::sync::atomic::Ordering::SeqCst);
                for (id, v) in who_ran(&d) {
                    first.entry(id).or_insert(v);
                }
                if last {
                    return first;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(oa.status.success(), "{}", err(&oa));
        assert!(ob.status.success(), "{}", err(&ob));
        watcher.join().unwrap()
    });
    assert!(start.elapsed() < Duration::from_secs(120));
    let rows = collect_csv(&d);
    assert_eq!(rows.len(), 1 + 10);
    // Every result parses and belongs to its cell.
    for e in std::fs::read_dir(d.join("cells")).unwrap().flatten() {
        if e.path().is_dir() {
            let j: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path().join("result.json")).unwrap()).unwrap();
            assert!(j["evaluation"]["categories"]["paper"].is_object());
        }
    }
    // Each cell ran exactly once, by one runner: the result first seen is the one at the end.
    let last = who_ran(&d);
    assert_eq!(first_seen, last, "a cell was run again after it was done");
    let set = |dd: &Path| -> BTreeSet<String> { last.iter().filter(|(_, v)| Path::new(&v.0) == dd).map(|(k, _)| k.clone()).collect() };
    let (sa, sb) = (set(&da), set(&db));
    assert!(sa.is_disjoint(&sb), "both ran {:?}", sa.intersection(&sb).collect::<Vec<_>>());
    assert_eq!(sa.union(&sb).cloned().collect::<BTreeSet<_>>(), ids, "the two runners' cells (a {sa:?}, b {sb:?}) are not the grid");
    println!("runner a ran {} cells, runner b {}", sa.len(), sb.len());
    // And the directory really was shared: both runners got work.
    assert!(!sa.is_empty() && !sb.is_empty(), "one runner ran every cell (a {}, b {}): nothing ran concurrently", sa.len(), sb.len());
}

#[test]
fn plan_makes_logs_and_the_printed_resubmission_reruns_failed_cells() {
    let t = tempdir("retry");
    // Cells 1 and 2 train on a PNG that does not exist yet: they fail until it is written.
    let png = t.join("late.png");
    let f = t.join("grid.toml");
    std::fs::write(
        &f,
        format!(
            "threads = 1\nrho = [0.5]\n[model]\narch = \"cnn\"\ndepth = 1\nchannels = 4\nkernel = 3\n[train]\nsteps = 5\ntol = 0.0\nlr = 1e-3\n[zip]\nseed = [0, 1, 2]\ntrain_image = [\"mnist:train:15\", {:?}, {:?}]\n",
            s(&png),
            s(&png)
        ),
    )
    .unwrap();
    let d = t.join("sw");
    let o = run(&["sweep", "plan", s(&f), "--out", s(&d)]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(d.join("logs").is_dir(), "plan creates the directory of slurm.sbatch's --output");
    // run-cell does not need logs/ (only Slurm writes there).
    std::fs::remove_dir(d.join("logs")).unwrap();
    let o = run(&["sweep", "run-cell", s(&d), "--index", "0"]);
    assert!(o.status.success(), "{}", err(&o));
    // Re-planning the same file restores logs/.
    assert!(run(&["sweep", "plan", s(&f), "--out", s(&d)]).status.success());
    assert!(d.join("logs").is_dir());
    for i in ["1", "2"] {
        let o = run(&["sweep", "run-cell", s(&d), "--index", i]);
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    }
    let resubmit = format!("sbatch --export=ALL,IDCRISIS_RETRY_FAILED=1 --array=1-2 {}", s(&d.join("slurm.sbatch")));
    let o = run(&["sweep", "status", s(&d)]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("1 done, 2 failed, 0 missing") && text.contains(&format!("resubmit: {resubmit}\n")), "{text}");
    let j: serde_json::Value = serde_json::from_slice(&run(&["sweep", "status", s(&d), "--format", "json"]).stdout).unwrap();
    assert_eq!(j["resubmit"], resubmit.as_str());
    assert_eq!(j["array"], "--array=1-2");
    let stamp = |i: usize| {
        let plan = std::fs::read_to_string(d.join("plan.jsonl")).unwrap();
        let c: serde_json::Value = serde_json::from_str(plan.lines().nth(i).unwrap()).unwrap();
        d.join("cells").join(c["id"].as_str().unwrap())
    };
    let done0 = std::fs::metadata(stamp(0).join("result.json")).unwrap().modified().unwrap();
    // Fix the cause, then run the array task as Slurm would: without the variable the failed cell
    // is skipped, with it (what the printed line sets) the cell runs again and ends done.
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 9 + y * 3) % 256) as u8])).save(&png).unwrap();
    let task = |i: &str, retry: bool| {
        let mut c = std::process::Command::new("bash");
        c.arg(d.join("slurm.sbatch")).env("SLURM_ARRAY_TASK_ID", i).env_remove("SLURM_CPUS_PER_TASK").env_remove("IDCRISIS_RETRY_FAILED");
        if retry {
            c.env("IDCRISIS_RETRY_FAILED", "1");
        }
        c.output().unwrap()
    };
    let o = task("1", false);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("IDCRISIS_RETRY_FAILED=1"), "{}", err(&o));
    assert!(stamp(1).join("error.json").is_file() && !stamp(1).join("DONE").exists());
    let o = task("1", true);
    assert!(o.status.success(), "{}", err(&o));
    assert!(stamp(1).join("DONE").is_file() && !stamp(1).join("error.json").exists());
    // The same through run-cell --retry-failed.
    let o = run(&["sweep", "run-cell", s(&d), "--index", "2", "--retry-failed"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("cell 2 done"));
    // The done cell was not run again; nothing is left to resubmit.
    let o = task("0", true);
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("already done"), "{}", err(&o));
    assert_eq!(std::fs::metadata(stamp(0).join("result.json")).unwrap().modified().unwrap(), done0);
    let o = run(&["sweep", "status", s(&d)]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("3 done, 0 failed, 0 missing") && !text.contains("resubmit"), "{text}");
}

/// Every file a cell's figures and tables come from, byte for byte, plus result.json without its
/// timings and run facts.
fn cell_record(d: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(d.join("cells")).unwrap() {
        let c = entry.unwrap().path();
        if !c.is_dir() {
            continue;
        }
        let id = c.file_name().unwrap().to_string_lossy().into_owned();
        for f in ["DONE", "weights.safetensors", "init.safetensors", "loss.csv", "outputs.png", "config.toml"] {
            if let Ok(b) = std::fs::read(c.join(f)) {
                out.insert(format!("{id}/{f}"), b);
            }
        }
        if let Ok(b) = std::fs::read(c.join("error.json")) {
            out.insert(format!("{id}/error.json"), b);
        }
        if let Ok(b) = std::fs::read(c.join("result.json")) {
            let mut j: serde_json::Value = serde_json::from_slice(&b).unwrap();
            for k in ["train_seconds", "ms_per_step", "total_seconds", "started", "group"] {
                j.as_object_mut().unwrap().remove(k);
            }
            out.insert(format!("{id}/result.json"), serde_json::to_vec(&j).unwrap());
        }
    }
    out
}

#[test]
fn a_grouped_sweep_writes_what_cells_run_alone_write() {
    let t = tempdir("group");
    let f = t.join("grid.toml");
    // 2 seeds × 2 depths × 3 optimizers × 2 learning rates: the huge rate diverges under gd and
    // momentum, so groups lose members at different steps.
    std::fs::write(
        &f,
        "threads = 1\nrho = [0.5]\nseed = [0, 1]\n[model]\narch = \"cnn\"\ndepth = [1, 2]\nchannels = 4\nkernel = 3\n[train]\nsteps = 30\ntol = 0.0\noptimizer = [\"adam\", \"momentum\", \"gd\"]\nlr = [1e-3, 1e6]\n",
    )
    .unwrap();
    let (alone, grouped) = (t.join("alone"), t.join("grouped"));
    for d in [&alone, &grouped] {
        let o = run(&["sweep", "plan", s(&f), "--out", s(d)]);
        assert!(o.status.success(), "{}", err(&o));
    }
    let o = run(&["sweep", "run", s(&alone), "-j", "1", "--threads-per-worker", "1", "-q"]);
    assert!(!o.status.success(), "the diverged cells fail the run: {}", err(&o));
    let o = run(&["sweep", "run", s(&grouped), "-j", "1", "--threads-per-worker", "2", "--group", "12", "-q"]);
    assert!(!o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("up to 12 cells of one architecture trained together"), "{}", err(&o));
    let (a, g) = (cell_record(&alone), cell_record(&grouped));
    assert_eq!(a.keys().collect::<Vec<_>>(), g.keys().collect::<Vec<_>>(), "the same files");
    let errors = a.keys().filter(|k| k.ends_with("error.json")).count();
    assert!(errors >= 4 && a.keys().filter(|k| k.ends_with("DONE")).count() >= 12, "{errors} failed cells");
    for (k, v) in &a {
        assert!(g[k] == *v, "{k} differs between the grouped and the one-by-one run");
    }
    // The grouped cells say so in result.json; the others do not.
    let plan = std::fs::read_to_string(grouped.join("plan.jsonl")).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(plan.lines().next().unwrap()).unwrap()["id"].as_str().unwrap().to_string();
    let r = |d: &Path| {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(d.join("cells").join(&id).join("result.json")).unwrap()).unwrap()
    };
    assert_eq!(r(&grouped)["group"], serde_json::json!({"size": 12, "threads": 2}));
    assert!(r(&alone).get("group").is_none());
    let o = run(&["sweep", "run", s(&grouped), "--group", "0"]);
    assert!(!o.status.success() && err(&o).contains("--group"), "{}", err(&o));
}
