//! Replays every committed corpus and crash file through its target, so
//! `cargo test` (stable, no instrumentation) keeps every input a fuzzer
//! ever found interesting — and every crash once fixed — passing.

use std::path::Path;

fn replay(dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut total = 0;
    for (name, run) in torsion_fuzz::TARGETS {
        let folder = root.join(name);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|e| e.expect("a readable folder").path())
            .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("a readable file");
            // A panic names the file to replay with `cargo fuzz run`.
            eprintln!("{name}: {}", file.display());
            run(&data);
            total += 1;
        }
    }
    eprintln!("replayed {total} files of {dir}/");
}

#[test]
fn every_corpus_file_passes() {
    replay("corpus");
}

#[test]
fn every_crash_found_stays_fixed() {
    replay("crashes");
}

#[test]
fn every_target_has_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in torsion_fuzz::TARGETS {
        let n = std::fs::read_dir(root.join(name)).map_or(0, |d| d.count());
        assert!(n > 0, "corpus/{name}/ is empty");
    }
}
