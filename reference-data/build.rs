//! Embeds every directory file under `data/directories/`, so a directory is added by writing
//! a file.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dir = root.join("data/directories");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut code = String::from(
        "/// Files under `data/directories/`, embedded by build.rs.\nconst BUILTIN: &[&str] = &[\n",
    );
    for f in &files {
        println!("cargo::rerun-if-changed={}", f.display());
        code.push_str(&format!(
            "    include_str!({:?}),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"))
        .join("builtin_directories.rs");
    std::fs::write(out, code).expect("write the generated list");
}
