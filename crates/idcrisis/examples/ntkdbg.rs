use idcrisis::engine::Engine;
use idcrisis::layers::Activation;
use idcrisis::model::{Arch, ModelConfig, Net};
use idcrisis::rng::{Rng, Stream};
use idcrisis::theory::ntk::*;
fn main() {
    let imgs = idcrisis::data::load_images(std::path::Path::new("/work/shared/data"), idcrisis::data::Dataset::Mnist, idcrisis::data::Split::Test).unwrap();
    let x: Vec<f64> = imgs.pixels[784..2 * 784].iter().map(|&p| p as f64 / 255.0).collect();
    let y: Vec<f64> = imgs.pixels[4 * 784..5 * 784].iter().map(|&p| p as f64 / 255.0).collect();
    let (sw, sb) = (2.0, 0.1);
    let cfg = NtkConfig { arch: Arch::Fcn, depth: 2, act: Activation::Relu, kernel: 5, weight_var: sw, bias_var: sb };
    let mut st = vec![];
    pair_recursion(&cfg, &x, &y, |_, s| st.push(s.clone()));
    let k1 = st[0].k[0];
    let (e, ed) = expectations(Activation::Relu, st[0].dx[0], st[0].dxp[0], k1);
    println!("analytic: K1={k1:.6} E={e:.6} Ed={ed:.6} K2={:.6} T2={:.6}  (sw*e+sb={:.6}, sw*ed*k1={:.6})", st[1].k[0], st[1].theta[0], sw*e+sb, sw*ed*k1);
    let eng = Engine::new(2).unwrap();
    let n = 8192;
    let mcfg = ModelConfig { arch: Arch::Fcn, depth: 2, width: n, act: Activation::Relu, bias: true, ..Default::default() };
    let mut net = Net::<f64>::new(&mcfg).unwrap();
    let mut rng = Rng::new(0, Stream::Misc);
    let layers = net.layers.clone();
    for l in &layers { let fi = l.fans().0 as f64; for v in &mut net.params[l.weight_range()] { *v = rng.normal() * (sw / fi).sqrt(); } for v in &mut net.params[l.bias_range().unwrap()] { *v = rng.normal() * sb.sqrt(); } }
    // hidden pre-activations
    let w1 = &net.params[layers[0].weight_range()]; let b1 = &net.params[layers[0].bias_range().unwrap()];
    let h = |v: &[f64]| -> Vec<f64> { (0..n).map(|j| w1[j*784..(j+1)*784].iter().zip(v).map(|(a,b)| a*b).sum::<f64>() + b1[j]).collect() };
    let (hx, hy) = (h(&x), h(&y));
    let emp_k1 = hx.iter().zip(&hy).map(|(a,b)| a*b).sum::<f64>() / n as f64;
    let emp_e = hx.iter().zip(&hy).map(|(a,b)| a.max(0.0)*b.max(0.0)).sum::<f64>() / n as f64;
    let emp_ed = hx.iter().zip(&hy).map(|(a,b)| if *a>0.0 && *b>0.0 {1.0} else {0.0}).sum::<f64>() / n as f64;
    println!("empirical: K1={emp_k1:.6} E={emp_e:.6} Ed={emp_ed:.6}");
    let mut ws = net.workspace(1, true);
    let u = 5;
    let mut g = |inp: &[f64]| { net.forward(&eng, &mut ws, inp, 1); let d = ws.dout(); d.iter_mut().for_each(|v| *v = 0.0); d[u] = 1.0; net.backward(&eng, &mut ws, 1); net.grads.clone() };
    let gx = g(&x); let gy = g(&y);
    for l in &layers { let fi = l.fans().0 as f64; let tw = sw / fi * l.weight_range().map(|i| gx[i]*gy[i]).sum::<f64>(); let tb = sb * l.bias_range().unwrap().map(|i| gx[i]*gy[i]).sum::<f64>(); println!("layer fan_in {fi}: weight term {tw:.6} bias term {tb:.6}"); }
}
