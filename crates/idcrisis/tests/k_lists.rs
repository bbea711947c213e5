//! The k-examples training lists follow the rules their docs state, recomputed from the MNIST
//! training labels (needs the data: `IDCRISIS_DATA`).

use idcrisis::data::{load_labels, resolve_data_dir, Dataset, Split};
use idcrisis::experiment::beyond::{MIXED, SEVENS};

#[test]
fn sevens_and_mixed_follow_their_rules() {
    let labels = load_labels(&resolve_data_dir(None), Dataset::Mnist, Split::Train).expect("MNIST labels (set IDCRISIS_DATA)");
    // Sevens: #15 (a 7), then every further 7 in index order.
    let mut sevens = vec![15];
    sevens.extend((0..labels.len()).filter(|&i| labels[i] == 7 && i != 15).take(63));
    assert_eq!(SEVENS.to_vec(), sevens);
    // Mixed: #15, then the first unused image of each digit in the order 0–6, 8, 9, 7, cycling.
    let mut mixed = vec![15];
    let mut used = std::collections::BTreeSet::from([15usize]);
    'fill: loop {
        for d in [0u8, 1, 2, 3, 4, 5, 6, 8, 9, 7] {
            if mixed.len() == 64 {
                break 'fill;
            }
            let i = (0..labels.len()).find(|&i| labels[i] == d && !used.contains(&i)).unwrap();
            used.insert(i);
            mixed.push(i);
        }
    }
    assert_eq!(MIXED.to_vec(), mixed);
    assert_eq!(labels[15], 7);
}
