//! The paper experiments' sweeps: the planned cells (ids and order) of every experiment at every
//! scale match a golden list recorded before the experiments were rewritten as data, so a
//! refactor of the specs cannot silently change what a resumed or Slurm-planned sweep runs.
//!
//! Regenerate the golden file (only for an intended change of the cells) with
//! `IDCRISIS_BLESS_CELLS=1 cargo test -p idcrisis --test reproduce_specs`.

use idcrisis::experiment::reproduce::{sweep_toml, Experiment, Scale};
use idcrisis::experiment::sweep;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const SCALES: [(Scale, &str); 3] = [(Scale::Micro, "micro"), (Scale::Quick, "quick"), (Scale::Full, "full")];
/// Seed counts recorded: the default (1) and a multi-seed plan.
const SEEDS: [usize; 2] = [1, 3];

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/reproduce_cells.txt")
}

/// One line per cell: `EXPERIMENT SCALE seeds=N INDEX ID`.
fn planned_cells() -> String {
    let mut s = String::new();
    for exp in Experiment::ALL {
        for (scale, sname) in SCALES {
            for seeds in SEEDS {
                let text = sweep_toml(exp, scale, seeds);
                let cells = sweep::expand(&text, Path::new("reproduce.sweep.toml"), false)
                    .unwrap_or_else(|e| panic!("{} {sname} seeds={seeds}: {e}\n{text}", exp.name()));
                for c in cells {
                    let _ = writeln!(s, "{} {sname} seeds={seeds} {} {}", exp.name(), c.index, c.id);
                }
            }
        }
    }
    s
}

#[test]
fn planned_cell_ids_and_order_match_the_golden_list() {
    let got = planned_cells();
    let path = golden_path();
    if std::env::var_os("IDCRISIS_BLESS_CELLS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert_eq!(a, b, "line {}: planned cell differs from the golden list", i + 1);
    }
    assert_eq!(g.len(), w.len(), "number of planned cells differs from the golden list");
}
