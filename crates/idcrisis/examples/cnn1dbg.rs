fn main() {
    let eng = idcrisis::engine::Engine::new(2).unwrap();
    let dd = std::path::PathBuf::from("/work/shared/data");
    for k in [29usize, 31, 35, 41, 55] {
        let t = std::time::Instant::now();
        let o = idcrisis::theory::cnn1::run(&eng, &dd, &Default::default(), &[k], idcrisis::model::Init::TorchDefault, 1.0, 0, 30000, &[0.5]).unwrap();
        let r = &o.rows[0];
        println!("k={k} rank={} null={} loss={:.2e} steps={} maxrel={:.2e} wrel={:.2e} pred_err={:.3e} trained={:.3e} bound={:.3e} {:.1}s", r.rank, r.nullity, r.final_loss, r.steps, r.max_rel_diff, r.weight_max_rel_diff, r.predicted_error, r.trained_error, r.bound, t.elapsed().as_secs_f64());
    }
}
